"""What each cartoon face is: its attributes ("modes") and their palettes, drawn from one
row of uniforms per face (`draw_attributes`), and the attributes a face's class can be
(`FACE_CLASSES`).

Modes (discrete attributes and how many values each has):

* background colour: 6 soft colours (sky, mint, rose, lavender, lemon, sand)
* skin tone: 5, from light to dark
* hair colour: 6 (black, dark brown, chestnut, blond, ginger, grey)
* hair style: 5 (bald, short crop, long hair down the sides, bob with bangs,
  afro)
* eyebrows: 3 (level, cross, worried); same colour as the hair
* eye style: 3 (open with white and coloured iris, black dots, closed arcs)
* eye colour: 4 (brown, blue, green, grey), seen on open eyes
* mouth: 4 (smile, flat line, open "O", toothy grin)
* glasses: 2 (none, round frames)
* cheek blush: 2 (none, pink)
* shirt colour: 6

Continuous jitter: face position (about +/-6% of the image), size (about
+/-8%), face width, eye spacing and height, mouth width, and slight
brightness variation of skin and hair.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

# Number of uniform draws per image.  Each image consumes one fixed-length row
# of `rng.random((count, N_DRAWS))`, so the first k faces of a larger call
# equal a call with count=k.  Changing this number (or the column meaning
# below) changes the data set.
N_DRAWS = 20


def rgb(*colours: tuple[int, int, int]) -> np.ndarray:
    """Palette of 8-bit RGB triples as floats in [0, 1], shape (len, 3)."""
    return np.asarray(colours, dtype=np.float64) / 255.0


BACKGROUNDS = rgb(
    (178, 211, 240),  # sky
    (186, 232, 200),  # mint
    (246, 196, 210),  # rose
    (214, 198, 242),  # lavender
    (246, 236, 168),  # lemon
    (226, 214, 192),  # sand
)
SKIN_TONES = rgb(
    (255, 226, 200),
    (240, 192, 148),
    (214, 160, 104),
    (164, 108, 66),
    (100, 62, 38),
)
HAIR_COLOURS = rgb(
    (28, 24, 28),  # black
    (84, 48, 26),  # dark brown
    (150, 92, 44),  # chestnut
    (236, 200, 100),  # blond
    (206, 84, 30),  # ginger
    (176, 176, 184),  # grey
)
EYE_COLOURS = rgb(
    (92, 52, 22),  # brown
    (40, 110, 210),  # blue
    (40, 150, 70),  # green
    (96, 104, 112),  # grey
)
SHIRT_COLOURS = rgb(
    (210, 50, 50),
    (50, 90, 200),
    (40, 150, 90),
    (240, 180, 30),
    (130, 70, 170),
    (30, 160, 170),
)
# Category names, index = value stored in Faces; weights sum to 1.
HAIR_STYLES = ("bald", "short", "long", "bob", "afro")
_HAIR_STYLE_P = (0.12, 0.24, 0.24, 0.20, 0.20)
EYE_STYLES = ("open", "dots", "closed")
_EYE_STYLE_P = (0.5, 0.3, 0.2)
MOUTHS = ("smile", "flat", "open", "grin")
_MOUTH_P = (0.4, 0.2, 0.2, 0.2)
BROWS = ("level", "cross", "worried")
# The palettes' names, for class names (`classes:`); index = row of the palette.
HAIR_COLOUR_NAMES = ("black", "dark_brown", "chestnut", "blond", "ginger", "grey")
BACKGROUND_NAMES = ("sky", "mint", "rose", "lavender", "lemon", "sand")
SHIRT_NAMES = ("red", "blue", "green", "yellow", "purple", "teal")
_GLASSES_P = 0.2
_BLUSH_P = 0.35


@dataclass
class Faces:
    """Per-image attributes, each an array of length n (float64 or int64)."""

    cx: np.ndarray  # head centre in image coordinates ([-1, 1], y down)
    cy: np.ndarray
    scale: np.ndarray  # image units per face unit
    width: np.ndarray  # head half-width in face units (half-height is 0.6)
    skin: np.ndarray  # (n, 3) RGB
    hair: np.ndarray  # (n, 3) RGB
    hair_style: np.ndarray
    brow: np.ndarray
    eye_style: np.ndarray
    eye_colour: np.ndarray  # (n, 3) RGB
    eye_x: np.ndarray  # eye distance from the face midline, face units
    eye_y: np.ndarray
    mouth: np.ndarray
    mouth_w: np.ndarray  # mouth width factor
    glasses: np.ndarray  # bool
    blush: np.ndarray  # bool
    background: np.ndarray  # (n, 3) RGB
    shirt: np.ndarray  # (n, 3) RGB

    def rows(self, start: int, stop: int) -> Faces:
        """The attributes of images start..stop-1."""
        return Faces(**{f.name: getattr(self, f.name)[start:stop] for f in fields(self)})


def _pick(u: np.ndarray, weights: tuple[float, ...]) -> np.ndarray:
    """Map uniforms in [0, 1) to category indices with the given weights."""
    edges = np.cumsum(weights)[:-1]
    return np.searchsorted(edges, u, side="right").astype(np.int64)


def _choose(u: np.ndarray, n: int) -> np.ndarray:
    """Map uniforms in [0, 1) to one of n equally likely categories."""
    return np.minimum((u * n).astype(np.int64), n - 1)


# The attributes a face's class can be (`classes:`), each read from its own column of the
# face's uniforms: `draw_attributes` draws the face with the same functions, so a face's class is
# always what it shows.


def _hair_colour(u: np.ndarray) -> np.ndarray:
    return _choose(u[:, 6], len(HAIR_COLOURS))


def _hair_style(u: np.ndarray) -> np.ndarray:
    return _pick(u[:, 8], _HAIR_STYLE_P)


def _eye_style(u: np.ndarray) -> np.ndarray:
    return _pick(u[:, 10], _EYE_STYLE_P)


def _mouth(u: np.ndarray) -> np.ndarray:
    return _pick(u[:, 14], _MOUTH_P)


def _glasses(u: np.ndarray) -> np.ndarray:
    return (u[:, 16] < _GLASSES_P).astype(np.int64)


def _background(u: np.ndarray) -> np.ndarray:
    return _choose(u[:, 18], len(BACKGROUNDS))


def _shirt(u: np.ndarray) -> np.ndarray:
    return _choose(u[:, 19], len(SHIRT_COLOURS))


#: What ``classes:`` may name: the classes' names (index = class number) and each face's
#: class from its row of uniforms.
FACE_CLASSES: dict[str, tuple[tuple[str, ...], Callable[[np.ndarray], np.ndarray]]] = {
    "hair_style": (HAIR_STYLES, _hair_style),
    "hair_colour": (HAIR_COLOUR_NAMES, _hair_colour),
    "eyes": (EYE_STYLES, _eye_style),
    "mouth": (MOUTHS, _mouth),
    "glasses": (("no_glasses", "glasses"), _glasses),
    "background": (BACKGROUND_NAMES, _background),
    "shirt": (SHIRT_NAMES, _shirt),
}


def draw_attributes(u: np.ndarray) -> Faces:
    """Turn a (count, N_DRAWS) array of uniforms into face attributes."""

    def span(col: int, lo: float, hi: float) -> np.ndarray:
        return lo + (hi - lo) * u[:, col]

    # Slight brightness jitter keeps the palettes recognisable as modes while
    # not making every pixel of a mode exactly equal.
    skin = SKIN_TONES[_choose(u[:, 4], len(SKIN_TONES))] * span(5, 0.95, 1.04)[:, None]
    hair = HAIR_COLOURS[_hair_colour(u)] * span(7, 0.92, 1.06)[:, None]
    return Faces(
        cx=span(0, -0.06, 0.06),
        cy=span(1, -0.10, 0.0),
        scale=span(2, 0.92, 1.06),
        width=span(3, 0.46, 0.54),
        skin=np.minimum(skin, 1.0),
        hair=np.minimum(hair, 1.0),
        hair_style=_hair_style(u),
        brow=_choose(u[:, 9], len(BROWS)),
        eye_style=_eye_style(u),
        eye_colour=EYE_COLOURS[_choose(u[:, 11], len(EYE_COLOURS))],
        eye_x=span(12, 0.18, 0.22),
        eye_y=span(13, -0.02, 0.04),
        mouth=_mouth(u),
        mouth_w=span(15, 0.85, 1.15),
        glasses=_glasses(u).astype(bool),
        blush=u[:, 17] < _BLUSH_P,
        background=BACKGROUNDS[_background(u)],
        shirt=SHIRT_COLOURS[_shirt(u)],
    )
