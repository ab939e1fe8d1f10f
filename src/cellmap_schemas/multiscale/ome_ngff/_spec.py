"""What the OME-NGFF specification words and lists: its rules (with the citations messages end
with) and its unit names. Shared by 0.4 and 0.5; the structs are in :mod:`._common`.

Every rule's message ends with the words of the specification it enforces and the section they
come from (``#axes-md``, ``#trafo-md``, ``#multiscale-md``, ``#labels-md``, ``#label-md``), so a
user can look it up at https://ngff.openmicroscopy.org/0.4/ or /0.5/.
"""

from __future__ import annotations

from cellmap_schemas.rules import Problem, Rule, Severity, define

SPACE_UNITS: frozenset[str] = frozenset(
    (
        "angstrom",
        "attometer",
        "centimeter",
        "decimeter",
        "exameter",
        "femtometer",
        "foot",
        "gigameter",
        "hectometer",
        "inch",
        "kilometer",
        "megameter",
        "meter",
        "micrometer",
        "mile",
        "millimeter",
        "nanometer",
        "parsec",
        "petameter",
        "picometer",
        "terameter",
        "yard",
        "yoctometer",
        "yottameter",
        "zeptometer",
        "zettameter",
    )
)
"""The UDUNITS-2 names the specification lists for axes of type "space"."""

TIME_UNITS: frozenset[str] = frozenset(
    (
        "attosecond",
        "centisecond",
        "day",
        "decisecond",
        "exasecond",
        "femtosecond",
        "gigasecond",
        "hectosecond",
        "hour",
        "kilosecond",
        "megasecond",
        "microsecond",
        "millisecond",
        "minute",
        "nanosecond",
        "petasecond",
        "picosecond",
        "second",
        "terasecond",
        "yoctosecond",
        "yottasecond",
        "zeptosecond",
        "zettasecond",
    )
)
"""The UDUNITS-2 names the specification lists for axes of type "time"."""

# Abbreviations that Cellmap's older conventions (N5 pixelResolution, COSEM transforms) use, so a
# message can say what to write instead.
_ABBREVIATIONS = {
    "nm": "nanometer",
    "um": "micrometer",
    "µm": "micrometer",
    "μm": "micrometer",
    "micron": "micrometer",
    "microns": "micrometer",
    "mm": "millimeter",
    "cm": "centimeter",
    "m": "meter",
    "pm": "picometer",
    "A": "angstrom",
    "Å": "angstrom",
    "s": "second",
    "sec": "second",
    "ms": "millisecond",
    "us": "microsecond",
    "µs": "microsecond",
    "ns": "nanosecond",
    "min": "minute",
    "h": "hour",
}

KNOWN_AXIS_TYPES = ("space", "time", "channel")


class SpecRule:
    """A rule of the specification: its table entry, and the citation that ends its messages.

    ``str(rule)`` is the citation (the specification's words and their section), so a message
    reads ``f"has 6 entries {R_AXES_LEN}"``; calling it makes the :class:`Problem`.
    """

    __slots__ = ("citation", "rule")

    def __init__(self, rule: Rule, citation: str) -> None:
        self.rule = rule
        self.citation = citation

    def __call__(self, loc: str, msg: str) -> Problem:
        return Problem(self.rule.id, loc, msg)

    def __str__(self) -> str:
        return self.citation


def rule(
    rule_id: str,
    severity: Severity,
    summary: str,
    version: str,
    section: str,
    text: str,
    *,
    on_missing_member: bool = False,
) -> SpecRule:
    """Declare a rule the specification words in section ``section`` as ``text``."""
    source = f'OME-NGFF {version}, #{section}: "{text}"'
    declared = define(rule_id, severity, summary, source, on_missing_member=on_missing_member)
    return SpecRule(declared, f'(spec #{section}: "{text}")')


R_MULTISCALES = rule(
    "OME025",
    "error",
    "multiscales is a non-empty list of images",
    "0.4 / 0.5",
    "multiscale-md",
    '"multiscales" contains a list of dictionaries where each entry describes a multiscale image',
)
SCHEMA = define(
    "OME001",
    "error",
    "the OME-NGFF metadata has the fields and types of the specification's JSON schemas",
    "OME-NGFF 0.4 / 0.5 JSON schemas (ngff schemas/image.schema, label.schema)",
)
UNIQUE_MULTISCALES = define(
    "OME028", "error", "the items of multiscales are unique", "OME-NGFF JSON schema, uniqueItems"
)


R_AXES_LEN = rule(
    "OME002",
    "error",
    "a multiscale has 2 to 5 axes",
    "0.4 / 0.5",
    "multiscale-md",
    'The length of "axes" must be between 2 and 5',
)
R_AXES_NAMES = rule(
    "OME003",
    "error",
    "axis names are unique",
    "0.4 / 0.5",
    "axes-md",
    'The values MUST be unique across all "name" fields',
)
R_AXES_SPACE = rule(
    "OME004",
    "error",
    "a multiscale has 2 or 3 space axes",
    "0.4 / 0.5",
    "multiscale-md",
    'The "axes" MUST contain 2 or 3 entries of "type:space"',
)
R_AXES_TIME = rule(
    "OME005",
    "error",
    "a multiscale has at most one time axis",
    "0.4 / 0.5",
    "multiscale-md",
    'MAY contain one additional entry of "type:time"',
)
R_AXES_CHANNEL = rule(
    "OME006",
    "error",
    "a multiscale has at most one channel or custom axis",
    "0.4 / 0.5",
    "multiscale-md",
    'MAY contain one additional entry of "type:channel" or a null / custom type',
)
R_AXES_ORDER = rule(
    "OME007",
    "error",
    "axes are ordered time, channel or custom, then space",
    "0.4 / 0.5",
    "multiscale-md",
    'the "time" axis must come first (if present), followed by the "channel" or custom axis '
    '(if present) and the axes of type "space"',
)
R_SPACE_UNIT = rule(
    "OME008",
    "warning",
    "a space axis' unit is one of the specification's UDUNITS-2 names",
    "0.4 / 0.5",
    "axes-md",
    "The value SHOULD be one of the following strings, which are valid units according to "
    'UDUNITS-2 [Units for "space" axes]',
)
R_TIME_UNIT = rule(
    "OME009",
    "warning",
    "a time axis' unit is one of the specification's UDUNITS-2 names",
    "0.4 / 0.5",
    "axes-md",
    "The value SHOULD be one of the following strings, which are valid units according to "
    'UDUNITS-2 [Units for "time" axes]',
)
R_TRAFO_TYPES = rule(
    "OME010",
    "error",
    "coordinate transformations are of type scale or translation",
    "0.4 / 0.5",
    "multiscale-md",
    "The transformation MUST only be of type translation or scale",
)
R_TRAFO_SCALE = rule(
    "OME011",
    "error",
    "a transformation list has exactly one scale",
    "0.4 / 0.5",
    "multiscale-md",
    "They MUST contain exactly one scale transformation",
)
R_TRAFO_TRANSLATION = rule(
    "OME012",
    "error",
    "a transformation list has at most one translation",
    "0.4 / 0.5",
    "multiscale-md",
    "It MAY contain exactly one translation",
)
R_TRAFO_ORDER = rule(
    "OME013",
    "error",
    "a translation comes after the scale",
    "0.4 / 0.5",
    "multiscale-md",
    "If translation is given it MUST be listed after scale",
)
R_TRAFO_LEN = rule(
    "OME014",
    "error",
    "scale and translation have one entry per axis",
    "0.4 / 0.5",
    "multiscale-md",
    'The length of the scale and translation array MUST be the same as the length of "axes"',
)
R_DATASETS = rule(
    "OME015",
    "error",
    "a multiscale has at least one dataset",
    "0.4 / 0.5",
    "multiscale-md",
    'Each "multiscales" dictionary MUST contain the field "datasets", which is a list of '
    "dictionaries describing the arrays storing the individual resolution levels",
)
R_DATASETS_ORDER = rule(
    "OME016",
    "error",
    "datasets are ordered from the finest scale to the coarsest",
    "0.4 / 0.5",
    "multiscale-md",
    'The "path"s MUST be ordered from largest (i.e. highest resolution) to smallest',
)
R_PATH_EXISTS = rule(
    "OME017",
    "error",
    "every dataset path names a member array",
    "0.4 / 0.5",
    "multiscale-md",
    "the path to the array for this resolution relative to the current zarr group",
    on_missing_member=True,
)
R_NDIM = rule(
    "OME018",
    "error",
    "every level's array has one dimension per axis",
    "0.4 / 0.5",
    "axes-md",
    'The length of "axes" MUST be equal to the number of dimensions of the arrays that contain '
    "the image data",
)
R_RGBA = rule(
    "OME019",
    "error",
    "a label colour's rgba has 4 entries",
    "0.4 / 0.5",
    "label-md",
    "the rgba key MAY be present, the value for which is an RGBA unsigned-int 4-tuple: "
    "[uint8, uint8, uint8, uint8]",
)
R_LABEL_VALUES_UNIQUE = rule(
    "OME020",
    "error",
    "label colours name each label value once",
    "0.4 / 0.5",
    "label-md",
    "All label-values must be unique",
)
R_PROPERTY_LABEL_VALUE = rule(
    "OME021",
    "error",
    "every label property has an integer label-value",
    "0.4 / 0.5",
    "label-md",
    'Each entry in the list MUST contain the key "label-value" with the pixel value',
)
R_LABELS_PATHS = rule(
    "OME022",
    "error",
    "every path of a labels group names a label image group below it",
    "0.4 / 0.5",
    "labels-md",
    'The special group "labels" found under an image Zarr contains the key labels containing '
    "the paths to label objects which can be found underneath the group",
    on_missing_member=True,
)
R_LABEL_DTYPE = rule(
    "OME023",
    "error",
    "label images hold integer data types",
    "0.4 / 0.5",
    "labels-md",
    "The pixels of the label images MUST be integer data types",
)


OMERO = define(
    "OME029",
    "error",
    "omero channels each have a colour and a window of start, end, min and max numbers",
    "OME-NGFF 0.4 #omero-md and image.schema (omero.channels[].window, .color required)",
)
OMERO_COLOR = define(
    "OME030",
    "error",
    "an omero channel's colour is six hexadecimal digits (RRGGBB)",
    "OME-NGFF 0.4 image.schema; ome-zarr-models Channel.color pattern [0-9a-fA-F]{6}",
)


def unit_hint(unit: str, allowed: frozenset[str]) -> str:
    """A "did you mean" for a unit that is not in the specification's list."""
    guess = _ABBREVIATIONS.get(unit) or _ABBREVIATIONS.get(unit.lower())
    if guess is None or guess not in allowed:
        import difflib  # only for a misspelling: not on every start-up

        close = difflib.get_close_matches(unit.lower(), sorted(allowed), n=1, cutoff=0.6)
        guess = close[0] if close else None
    return f' (did you mean "{guess}"?)' if guess else ""
