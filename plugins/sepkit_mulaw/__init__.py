"""Built-in plugin: the mu-law companding codec (ITU-T G.711 style), a parameter-free reference codec."""

from sepkit.hookspecs import hookimpl


@hookimpl
def sepkit_register(registry):
    registry.register(
        "codec",
        "mulaw",
        "sepkit_mulaw.codec:MuLawCodec",
        summary="mu-law companding, one codebook of 2**bits codes per sample (G.711 style)",
        example="sample_rate: 8000\nbits: 8",
    )
