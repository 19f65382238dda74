"""The public `campeonato-brasileiro-full.csv` format: the generator writes it, `data` reads it."""

# Column order and spelling exactly as in the public file ("rodata" is the round number,
# misspelled at the source).
RAW_COLUMNS: tuple[str, ...] = (
    "ID",
    "rodata",
    "data",
    "hora",
    "mandante",
    "visitante",
    "formacao_mandante",
    "formacao_visitante",
    "tecnico_mandante",
    "tecnico_visitante",
    "vencedor",
    "arena",
    "mandante_Placar",
    "visitante_Placar",
    "mandante_Estado",
    "visitante_Estado",
)

DATE_FORMAT = "%d/%m/%Y"  # `data`: dd/mm/yyyy
DRAW_MARK = "-"  # `vencedor` on a draw
