"""Neural-network building blocks that several plugins share (public: plugins may import them).

- ``sepkit.layers.resunet``: the ResUNet residual conv blocks (AudioSep's ResUNet30, LASS-Net's
  ResUNet), with FiLM conditioning and the CPU layout helpers they train fast with.
"""
