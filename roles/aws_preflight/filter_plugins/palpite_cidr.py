"""CIDR checks for the provisioning preflight (IPv4, with Python's ipaddress: no netaddr needed)."""

import ipaddress


def _network(value):
    try:
        return ipaddress.IPv4Network(str(value), strict=True)
    except ValueError:
        return None


def palpite_cidr_invalid(values):
    """The entries of ``values`` that are not canonical IPv4 CIDR blocks (a.b.c.d/n)."""
    return [v for v in values if "/" not in str(v) or _network(v) is None]


def palpite_cidr_anywhere(values):
    """The entries of ``values`` that open a port to every address (a /0)."""
    return [v for v in values if (n := _network(v)) is not None and n.prefixlen == 0]


def palpite_cidr_public(values):
    """The entries of ``values`` that reach beyond private networks (RFC 1918 and the like)."""
    return [v for v in values if (n := _network(v)) is not None and not n.is_private]


def palpite_cidr_outside(values, parent):
    """The entries of ``values`` that are not inside the network ``parent``."""
    p = _network(parent)
    return [v for v in values if p is None or (n := _network(v)) is None or not n.subnet_of(p)]


def palpite_cidr_overlapping(values):
    """Pairs of entries of ``values`` that overlap each other."""
    nets = [(v, _network(v)) for v in values]
    return [
        [a, b]
        for i, (a, na) in enumerate(nets)
        for b, nb in nets[i + 1 :]
        if na is not None and nb is not None and na.overlaps(nb)
    ]


class FilterModule:
    def filters(self):
        return {
            "palpite_cidr_invalid": palpite_cidr_invalid,
            "palpite_cidr_anywhere": palpite_cidr_anywhere,
            "palpite_cidr_public": palpite_cidr_public,
            "palpite_cidr_outside": palpite_cidr_outside,
            "palpite_cidr_overlapping": palpite_cidr_overlapping,
        }
