"""The synthetic league's clubs: name, state (UF, for travel distances), home arena, and
whether it is a traditionally strong club."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Club:
    name: str
    state: str
    arena: str
    big: bool = False  # a traditionally strong club: a higher long-run strength


CLUBS: tuple[Club, ...] = (
    Club("Flamengo", "RJ", "Maracanã", big=True),
    Club("Palmeiras", "SP", "Allianz Parque", big=True),
    Club("Corinthians", "SP", "Neo Química Arena", big=True),
    Club("Sao Paulo", "SP", "Morumbi", big=True),
    Club("Santos", "SP", "Vila Belmiro", big=True),
    Club("Gremio", "RS", "Arena do Grêmio", big=True),
    Club("Internacional", "RS", "Beira-Rio", big=True),
    Club("Cruzeiro", "MG", "Mineirão", big=True),
    Club("Atletico-MG", "MG", "Arena MRV", big=True),
    Club("Fluminense", "RJ", "Maracanã", big=True),
    Club("Vasco", "RJ", "São Januário", big=True),
    Club("Botafogo-RJ", "RJ", "Nilton Santos", big=True),
    Club("Athletico-PR", "PR", "Arena da Baixada", big=True),
    Club("Coritiba", "PR", "Couto Pereira"),
    Club("Goias", "GO", "Serrinha"),
    Club("Bahia", "BA", "Arena Fonte Nova"),
    Club("Vitoria", "BA", "Barradão"),
    Club("Sport", "PE", "Ilha do Retiro"),
    Club("Figueirense", "SC", "Orlando Scarpelli"),
    Club("Ponte Preta", "SP", "Moisés Lucarelli"),
    Club("Guarani", "SP", "Brinco de Ouro"),
    Club("Paysandu", "PA", "Curuzu"),
    Club("Juventude", "RS", "Alfredo Jaconi"),
    Club("Criciuma", "SC", "Heriberto Hülse"),
    Club("Fortaleza", "CE", "Castelão"),
    Club("Parana", "PR", "Vila Capanema"),
    Club("Sao Caetano", "SP", "Anacletto Campanella"),
    Club("Portuguesa", "SP", "Canindé"),
    Club("Ceara", "CE", "Castelão"),
    Club("Nautico", "PE", "Aflitos"),
    Club("Santa Cruz", "PE", "Arruda"),
    Club("Avai", "SC", "Ressacada"),
    Club("Atletico-GO", "GO", "Antônio Accioly"),
    Club("Chapecoense", "SC", "Arena Condá"),
    Club("America-MG", "MG", "Independência"),
    Club("Bragantino", "SP", "Nabi Abi Chedid"),
    Club("Cuiaba", "MT", "Arena Pantanal"),
    Club("Joinville", "SC", "Arena Joinville"),
    Club("Santo Andre", "SP", "Bruno José Daniel"),
    Club("Barueri", "SP", "Arena Barueri"),
    Club("Ipatinga", "MG", "Ipatingão"),
    Club("Brasiliense", "DF", "Boca do Jacaré"),
    Club("Gremio Prudente", "SP", "Prudentão"),
    Club("CSA", "AL", "Rei Pelé"),
    Club("America-RN", "RN", "Arena das Dunas"),
)
