"""sepkit's own plugin: registers the core's rule-based instruction parser through the same hook as everyone."""

from sepkit.hookspecs import hookimpl


@hookimpl
def sepkit_register(registry):
    registry.register(
        "instruction_parser",
        "rules",
        "sepkit.instructions:RuleBasedInstructionParser",
        summary="rule-based extract/remove parser with compound instructions",
    )
    registry.register(
        "system",
        "separation",
        "sepkit.train.system:SeparationSystem",
        summary="trains a separation pipeline: mixture + description -> target (l1, si_sdr or snr loss)",
    )
