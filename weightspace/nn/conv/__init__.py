from weightspace.nn.conv.edge_mpnn_conv import EdgeMPNNConv

__all__ = ["EdgeMPNNConv"]
