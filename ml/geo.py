"""Distances between Brazilian states (their capitals): how far the visitors travelled."""

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

# Capital of each state (UF code): latitude, longitude in degrees.
CAPITALS: dict[str, tuple[float, float]] = {
    "AC": (-9.97, -67.81),
    "AL": (-9.67, -35.74),
    "AM": (-3.12, -60.02),
    "AP": (0.03, -51.07),
    "BA": (-12.97, -38.50),
    "CE": (-3.72, -38.54),
    "DF": (-15.79, -47.88),
    "ES": (-20.32, -40.34),
    "GO": (-16.68, -49.25),
    "MA": (-2.53, -44.30),
    "MG": (-19.92, -43.94),
    "MS": (-20.47, -54.62),
    "MT": (-15.60, -56.10),
    "PA": (-1.46, -48.49),
    "PB": (-7.12, -34.86),
    "PE": (-8.05, -34.88),
    "PI": (-5.09, -42.80),
    "PR": (-25.43, -49.27),
    "RJ": (-22.91, -43.17),
    "RN": (-5.79, -35.21),
    "RO": (-8.76, -63.90),
    "RR": (2.82, -60.67),
    "RS": (-30.03, -51.23),
    "SC": (-27.59, -48.55),
    "SE": (-10.91, -37.07),
    "SP": (-23.55, -46.63),
    "TO": (-10.18, -48.33),
}
_EARTH_RADIUS_KM = 6371.0
_INDEX = {code: i for i, code in enumerate(CAPITALS)}
_LAT = np.radians([lat for lat, _ in CAPITALS.values()])
_LON = np.radians([lon for _, lon in CAPITALS.values()])


def lookup(index: Mapping[Any, int], keys: Iterable[Any]) -> np.ndarray:
    """Positions of `keys` in `index`, -1 where absent. A dict lookup per key: faster
    than pandas' indexers for the short strings here, which it first converts to Arrow."""
    get = index.get
    try:
        return np.fromiter((get(k, -1) for k in keys), dtype=np.int64)
    except TypeError:  # an unhashable key (a list, say) is in no index
        return np.array([get(k, -1) if isinstance(k, Hashable) else -1 for k in keys])


def state_distance_km(home_states: Sequence[str], away_states: Sequence[str]) -> np.ndarray:
    """Great-circle km between the states' capitals; NaN where a code is unknown or empty."""
    h = lookup(_INDEX, home_states)
    a = lookup(_INDEX, away_states)
    half_dlat = (_LAT[a] - _LAT[h]) / 2
    half_dlon = (_LON[a] - _LON[h]) / 2
    s = np.sin(half_dlat) ** 2 + np.cos(_LAT[h]) * np.cos(_LAT[a]) * np.sin(half_dlon) ** 2
    km = 2 * _EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(s, 0.0, 1.0)))
    return np.where((h >= 0) & (a >= 0), km, np.nan)
