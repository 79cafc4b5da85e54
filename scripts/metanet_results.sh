#!/usr/bin/env bash
# The metanetwork comparison of benchmarks/RESULTS.md: every model on the same zoo and split,
# 3 seeds each (Hydra multiruns), then one table.
#   scripts/metanet_results.sh ZOO_DIR OUT_DIR [m1d_cnn] [m1d_mlp] [m1d_inr] [cnn] [inr] [edit]
# (default: all). ZOO_DIR holds the zoos the parts read: mnist1d_cnn.h5, mnist1d_mlp.h5
# (2,000 runs each: scripts/build_zoo.py zoo=mnist1d_cnn n_runs=2000 seed=0 out=...; the MLP
# zoo with zoo.depths=[2] zoo.widths=[32], one weight layout, so that the flat baselines read
# every network and not one architecture of eighteen),
# mnist1d_inr.h5 (zoo=mnist1d_inr n_runs=10000), digits_cnn.h5 and digits_inr.h5.
# model=nfn_np needs the benchmark extra (pip install nfn einops); without it that row is
# skipped.
set -euo pipefail
zoos=${1:?ZOO_DIR}; out=${2:?OUT_DIR}; shift 2
parts=${*:-m1d_cnn m1d_mlp m1d_inr cnn inr edit}
has() { [[ " $parts " == *" $1 "* ]]; }
# LAUNCHER: Hydra launcher overrides for every sweep, e.g. on a SLURM cluster
# LAUNCHER="hydra/launcher=submitit_slurm hydra.launcher.partition=gpu hydra.launcher.gpus_per_node=1"
# shellcheck disable=SC2086
train() { python scripts/train.py -m trainer.progress=false trainer.seed=0,1,2 ${LAUNCHER:-} "$@"; }
baselines=statnn,np,mlp
python -c "import nfn" 2>/dev/null && baselines=$baselines,nfn_np

# MNIST-1D zoos: test accuracy of the final checkpoints (200 test runs of 2,000, split by
# run 80/10/10, both activations); every model gets the same epochs (M1D_EPOCHS, default 10),
# learning rate and batch size. The GMN is 3 x 32 (bf16-mixed, the config's default), once as
# it was and once with MLP value encoders, the per-layer readout and weight statistics. With
# probes: 16 signals of the recipe's validation split, read by the GMN at every neuron (and,
# with model.outputs, its per-layer readout reads the output neurons' states one by one) and
# by StatNN as the network's outputs beside its statistics (the same inputs for both).
gmn_m1d="model=gmn model.hidden=32 model.layers=3"
gmn_full="$gmn_m1d model.nonlinear=true model.readout=layers model.stats=true"
val_probes="model.probes=16 model.probe_data=val"
for zoo in m1d_cnn m1d_mlp; do
  if has $zoo; then
    file=$zoos/${zoo/m1d/mnist1d}.h5
    m1d="data.zoo=$file task=predict_accuracy +data.where.epoch=[12] trainer.epochs=${M1D_EPOCHS:-10}"
    train $m1d $gmn_full hydra.sweep.dir="$out/$zoo/gmn"
    train $m1d $gmn_full $val_probes hydra.sweep.dir="$out/$zoo/gmn_probes"
    train $m1d $gmn_full $val_probes model.outputs=true hydra.sweep.dir="$out/$zoo/gmn_outputs"
    train $m1d $gmn_full $val_probes model.outputs=true trainer.epochs=20 \
      trainer.schedule=cosine hydra.sweep.dir="$out/$zoo/gmn_outputs_cos20"
    train $m1d model=statnn $val_probes hydra.sweep.dir="$out/$zoo/statnn_probes"
    train $m1d model=statnn $val_probes trainer.epochs=20 trainer.schedule=cosine \
      hydra.sweep.dir="$out/$zoo/statnn_probes_cos20"
    train $m1d $gmn_m1d hydra.sweep.dir="$out/$zoo/gmn_plain"
    train $m1d model=$baselines hydra.sweep.dir="$out/$zoo/base"
  fi
done

if has cnn; then  # accuracy prediction, every checkpoint of every run
  cnn="data.zoo=$zoos/digits_cnn.h5 task=predict_accuracy trainer.epochs=15"
  train $cnn model=gmn model.probes=${GMN_PROBES:-16} hydra.sweep.dir="$out/cnn/gmn"
  train $cnn model=statnn,np,mlp hydra.sweep.dir="$out/cnn/base"
fi
# digit classification and dilation editing on the INR zoo (final fits only), INR_EPOCHS
# epochs (default 30). The GMN is 3 x 32 here (a 4 x 64 one is ~4x slower on a 2-core CPU),
# learns faster at lr 3e-3, reads SIREN weights through Fourier features (with raw values
# it stays at chance: benchmarks/RESULTS.md) and, unless GMN_PROBES=0, gets 16 probe values
# per neuron. GMN_AUG=0 skips the GMN's augmented runs (they take most of the time on a
# 2-core CPU).
inr="data.zoo=$zoos/digits_inr.h5 +data.where.step=[300] trainer.epochs=${INR_EPOCHS:-30}"
gmn="model=gmn model.hidden=32 model.layers=3 model.fourier=8 model.probes=${GMN_PROBES:-16}
trainer.lr=0.003"
if has inr; then
  for aug in "augment.symmetries=false" "augment.symmetries=true augment.noise=0.05"; do
    tag=$( [[ $aug == *true* ]] && echo aug || echo plain )
    if [[ $tag == plain || ${GMN_AUG:-1} == 1 ]]; then
      train $inr task=classify_inr $aug $gmn hydra.sweep.dir="$out/inr_$tag/gmn"
    fi
    train $inr task=classify_inr $aug model=np,mlp hydra.sweep.dir="$out/inr_$tag/base"
  done
fi
if has m1d_inr; then  # one SIREN per MNIST-1D signal (10,000 INRs), classified by digit
  # probes: the 40 coordinates each signal is sampled at (model.probe_data=val on an INR zoo),
  # read by the GMN at every neuron and by StatNN as the outputs there
  m1d_inr="data.zoo=$zoos/mnist1d_inr.h5 task=classify_inr trainer.epochs=${M1D_INR_EPOCHS:-10}"
  coords="model.probes=40 model.probe_data=val"
  train $m1d_inr $gmn hydra.sweep.dir="$out/m1d_inr/gmn"
  train $m1d_inr $gmn $coords model.outputs=true model.readout=layers model.stats=true \
    model.nonlinear=true hydra.sweep.dir="$out/m1d_inr/gmn_coords"
  train $m1d_inr model=statnn $coords hydra.sweep.dir="$out/m1d_inr/statnn_coords"
  train $m1d_inr model=statnn,np,mlp hydra.sweep.dir="$out/m1d_inr/base"
  # the same models, 20 epochs with a cosine schedule: no augmentation, random symmetries,
  # random symmetries and weight noise
  cos20="trainer.epochs=20 trainer.schedule=cosine"
  for aug in "augment.symmetries=false" "augment.symmetries=true augment.noise=0" \
             "augment.symmetries=true augment.noise=0.05"; do
    case $aug in *0.05) tag=_aug ;; *true*) tag=_sym ;; *) tag="" ;; esac
    train $m1d_inr $cos20 $aug $gmn $coords model.outputs=true model.readout=layers \
      model.stats=true model.nonlinear=true hydra.sweep.dir="$out/m1d_inr/gmn_coords_cos20$tag"
    train $m1d_inr $cos20 $aug model=statnn $coords \
      hydra.sweep.dir="$out/m1d_inr/statnn_coords_cos20$tag"
  done
  train $m1d_inr $cos20 model=np,mlp hydra.sweep.dir="$out/m1d_inr/base_cos20"
  mkdir -p "$out/m1d_inr"  # the reference: a classifier of the signals the INRs render
  python scripts/inr_reference.py "$zoos/mnist1d_inr.h5" | tee "$out/m1d_inr/reference.txt"
fi
if has edit; then
  train $inr task=edit_dilate $gmn hydra.sweep.dir="$out/edit/gmn"
  train $inr task=edit_dilate model=np,mlp hydra.sweep.dir="$out/edit/base"
fi
python scripts/summarize_runs.py "$out"
