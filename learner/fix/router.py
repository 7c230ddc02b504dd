"""Error code -> route. A table, never a regex over message prose.

A route is an error family. It names the adapter the model uses for the error and the
short hint the model sees. Codes rustc writes as ``E0308``; unknown codes (and errors
without a code, such as syntax errors) go to the ``fallback`` route, which uses the base
model with no adapter. This is the only module that derives route names.
"""

from __future__ import annotations

from collections.abc import Iterable

from learner.records import FALLBACK_ROUTE, Route, RustDiagnostic

#: (route name, hint for the model, error codes). Order is irrelevant; a code appears once.
_TABLE: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "moved-value",
        "A value is used after it was moved. Borrow it (`&x`), clone it (`.clone()`), or move it "
        "last; keep every use of the value.",
        ("E0382", "E0505", "E0507", "E0508", "E0509", "E0381"),
    ),
    (
        "borrow-conflict",
        "Two borrows overlap. Shorten one borrow (finish using it first, copy the value out, or "
        "split the work into separate scopes) so mutable and shared borrows do not overlap.",
        ("E0499", "E0502", "E0506", "E0503", "E0501", "E0500"),
    ),
    (
        "mutability",
        "Something is changed that is not declared mutable. Add `mut` to the binding, or take "
        "`&mut` instead of `&` where it is borrowed.",
        ("E0596", "E0594", "E0384"),
    ),
    (
        "dangling-reference",
        "A reference outlives the value it points to. Return or store an owned value, keep the "
        "value alive longer, or `move` it into the closure.",
        ("E0597", "E0716", "E0515", "E0373", "E0713", "E0521", "E0712"),
    ),
    (
        "missing-lifetime",
        "A reference type needs a lifetime. Add a lifetime parameter (`<'a>`) and use it on the "
        "related references, or return an owned type.",
        ("E0106", "E0261", "E0262", "E0263", "E0621", "E0726", "E0309", "E0310", "E0491"),
    ),
    (
        "mismatched-types",
        "An expression has a different type than expected. Convert it (`.to_string()`, `.into()`, "
        "`as`, `&`/`*`), or change the declared type so both agree.",
        ("E0308", "E0605", "E0606", "E0604", "E0614", "E0070", "E0069", "E0071", "E0054", "E0620"),
    ),
    (
        "trait-bound",
        "A type lacks a trait it needs. Derive it on the type's definition (`#[derive(...)]`), "
        "implement it, or add the bound (`T: Trait`) to the generic parameter.",
        ("E0277", "E0369", "E0368", "E0600", "E0204", "E0038", "E0184"),
    ),
    (
        "method-not-found",
        "A method or field does not exist on this type. Use the right name, import the trait that "
        "provides it, derive it, or implement it on the type.",
        ("E0599", "E0609", "E0610", "E0615", "E0616", "E0689"),
    ),
    (
        "unresolved-name",
        "A name is not in scope. Fix the spelling, add the `use` path, or declare the item.",
        ("E0425", "E0433", "E0412", "E0432", "E0405", "E0422", "E0423", "E0424", "E0411", "E0434", "E0603"),
    ),
    (
        "wrong-arguments",
        "A call or generic has the wrong number of arguments. Match the definition's signature.",
        ("E0061", "E0060", "E0107", "E0057", "E0050"),
    ),
    (
        "trait-impl",
        "An impl does not match its trait. Implement every required item with the trait's exact "
        "signatures, and nothing the trait does not declare.",
        ("E0046", "E0407", "E0053", "E0117", "E0119", "E0120", "E0185", "E0186", "E0195", "E0200", "E0201"),
    ),
    (
        "type-inference",
        "The compiler cannot infer a type. Add a type annotation (`let x: T`) or a turbofish (`::<T>`).",
        ("E0282", "E0283", "E0284"),
    ),
    (
        "struct-fields",
        "A struct literal or pattern does not match the struct. Give every field exactly once, "
        "with the names the definition uses.",
        ("E0063", "E0062", "E0560", "E0559", "E0026", "E0027"),
    ),
    (
        "patterns",
        "A pattern is not exhaustive or does not fit the type. Cover the missing cases (or add "
        "`_ =>`), and match the variant's shape.",
        ("E0004", "E0005", "E0023", "E0029", "E0164"),
    ),
    (
        "duplicate-definition",
        "A name is defined twice. Rename or remove the second definition, or import under another name.",
        ("E0428", "E0252", "E0255", "E0124", "E0403", "E0415", "E0416"),
    ),
)

_FALLBACK_ROUTE = Route(
    FALLBACK_ROUTE,
    "Fix the compile error with the smallest change that keeps the code's intent; do not delete code.",
)

#: Routes whose errors come from the borrow checker, which runs only after type checking
#: succeeds: fixing a type error may legitimately unveil them.
BORROWCK_ROUTES = frozenset({"moved-value", "borrow-conflict", "mutability", "dangling-reference"})


def _build() -> tuple[dict[str, Route], dict[str, Route]]:
    by_name: dict[str, Route] = {FALLBACK_ROUTE: _FALLBACK_ROUTE}
    by_code: dict[str, Route] = {}
    for name, hint, codes in _TABLE:
        route = Route(name, hint, codes)
        by_name[name] = route
        for code in codes:
            if code in by_code:
                raise ValueError(f"route table lists {code} twice")
            by_code[code] = route
    return by_name, by_code


ROUTES, _BY_CODE = _build()


def route_for_code(code: str | None) -> Route:
    """The route of a rustc error code (``E0308``); the fallback route for unknown or missing codes."""
    if code is None:
        return _FALLBACK_ROUTE
    return _BY_CODE.get(code.strip().upper(), _FALLBACK_ROUTE)


def route_for(diagnostic: RustDiagnostic) -> Route:
    return route_for_code(diagnostic.code)


def route_named(name: str) -> Route:
    """A route by name; raises KeyError naming the known routes."""
    try:
        return ROUTES[name]
    except KeyError:
        raise KeyError(f"unknown route {name!r}; known routes: {', '.join(sorted(ROUTES))}") from None


def known_codes() -> list[str]:
    return sorted(_BY_CODE)


def is_borrowck(codes: Iterable[str]) -> bool:
    return all(route_for_code(c).name in BORROWCK_ROUTES for c in codes)
