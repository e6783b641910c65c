"""The kit's comparison of what a backend returned with what the contract says.

A bare ``assert got == want`` prints values only when pytest rewrote the module's asserts, which
depends on how the kit was loaded; a backend author reading a failure needs both values and the
call every time, so the kit's checks say them in the message itself.
"""

from __future__ import annotations


def expect(got: object, want: object, why: object = "", *, call: str) -> None:
    """Fail unless ``got`` is ``want`` (``None``/``True``/``False``: by identity, so ``0`` is
    not ``False``) or equals it. ``why`` says what a difference means, ``call`` what was asked."""
    same = got is want if want is None or isinstance(want, bool) else got == want
    if not same:
        because = f" ({why})" if why else ""
        raise AssertionError(f"{call} returned {got!r}; the contract says {want!r}{because}")
