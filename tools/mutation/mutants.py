"""Mutants of a Python module: one small, plausible change each, found by walking its AST.

The operators are the classic ones (comparison and arithmetic swaps, constant nudges, boolean
connectives, dropped ``not``, dropped calls, ``break``/``continue`` swaps, ``min``/``max``),
plus skipped pass-through calls: ``key = check_key(key)`` becomes ``key = key`` (a forgotten
check) and ``await guard(..., hook(...))`` becomes ``await hook(...)`` (a forgotten wrapper):
each models a slip a backend author makes, and a kit that lets one through has a hole where a
real bug would also pass. Docstrings, annotations and string constants are left alone: changing
them cannot change behaviour (or only error messages, which the kit does not compare).
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass

_COMPARE_SWAPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_BINOP_SWAPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.FloorDiv,
    ast.FloorDiv: ast.Mult,
}
_NAME_SWAPS = {
    "min": "max",
    "max": "min",
    "bisect_left": "bisect_right",
    "bisect_right": "bisect_left",
}


@dataclass(frozen=True, slots=True)
class Mutant:
    """The ``index``-th mutation site of a module, where it is and what it changes."""

    index: int
    line: int
    description: str
    source: str  # the whole mutated module


Edit = Callable[[ast.AST], str]
"""Changes one node in place and says what it did."""


def _sites(tree: ast.Module) -> Iterator[tuple[ast.AST, Edit]]:
    """Every (node, edit) pair, in source order; an edit applies to a copy of ``tree``."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    annotations = {
        id(sub)
        for node in ast.walk(tree)
        for annotation in _annotations(node)
        for sub in ast.walk(annotation)
    }
    for node in ast.walk(tree):
        if id(node) in annotations or id(node) in docstrings:
            continue
        if isinstance(node, ast.Compare):
            for position, op in enumerate(node.ops):
                if type(op) in _COMPARE_SWAPS:
                    yield node, _swap_compare(position)
        elif isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in _BINOP_SWAPS:
            yield node, _swap_binop
        elif isinstance(node, ast.BoolOp):
            yield node, _swap_boolop
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield node, _replacing
        elif isinstance(node, ast.Constant) and type(node.value) is bool:
            yield node, _flip_bool
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            yield node, _nudge(+1)
            if node.value != 0:
                yield node, _nudge(-1)
        elif isinstance(node, ast.Name | ast.Attribute) and _name_of(node) in _NAME_SWAPS:
            yield node, _swap_name
        elif _replacement(node) is not None and not isinstance(node, ast.UnaryOp | ast.Expr):
            yield node, _replacing  # break <-> continue
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call | ast.Await):
            yield node, _replacing
        if isinstance(node, ast.Assign):
            for position in _pass_through_assignments(node):
                yield node, _skip_assigned_call(position)
        elif isinstance(node, ast.Await) and _wrapped_call(node) is not None:
            yield node, _skip_wrapper


def _pass_through_assignments(node: ast.Assign) -> list[int]:
    """Positions in ``node``'s value of calls whose first argument is the name they assign."""
    if len(node.targets) != 1:
        return []
    target, value = node.targets[0], node.value
    pairs = (
        list(zip(target.elts, value.elts, strict=False))
        if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple)
        else [(target, value)]
    )
    return [
        position
        for position, (name, call) in enumerate(pairs)
        if isinstance(name, ast.Name)
        and isinstance(call, ast.Call)
        and call.args
        and isinstance(call.args[0], ast.Name)
        and call.args[0].id == name.id
    ]


def _skip_assigned_call(position: int) -> Edit:
    def edit(node: ast.AST) -> str:
        assert isinstance(node, ast.Assign)
        value = node.value
        holder = value.elts if isinstance(value, ast.Tuple) else None
        call = holder[position] if holder is not None else value
        assert isinstance(call, ast.Call)
        if holder is not None:
            holder[position] = call.args[0]
        else:
            node.value = call.args[0]
        return f"skip `{ast.unparse(call)}`"

    return edit


def _wrapped_call(node: ast.Await) -> ast.expr | None:
    """In ``await f(..., g(...))`` or ``await f(..., awaitable)``, what ``f`` wraps (its last
    argument)."""
    outer = node.value
    if (
        isinstance(outer, ast.Call)
        and outer.args
        and isinstance(outer.args[-1], ast.Call | ast.Name)
    ):
        return outer.args[-1]
    return None


def _skip_wrapper(node: ast.AST) -> str:
    assert isinstance(node, ast.Await)
    inner, outer = _wrapped_call(node), node.value
    assert inner is not None
    assert isinstance(outer, ast.Call)
    node.value = inner
    return f"await `{ast.unparse(inner)}` without `{ast.unparse(outer.func)}`"


def _annotations(node: ast.AST) -> list[ast.AST]:
    found: list[ast.AST] = []
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns is not None:
        found.append(node.returns)
    if isinstance(node, ast.arg) and node.annotation is not None:
        found.append(node.annotation)
    if isinstance(node, ast.AnnAssign):
        found.append(node.annotation)
    return found


def _name_of(node: ast.AST) -> str:
    return node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")


def _swap_compare(position: int) -> Edit:
    def edit(node: ast.AST) -> str:
        assert isinstance(node, ast.Compare)
        old = node.ops[position]
        new = _COMPARE_SWAPS[type(old)]()
        node.ops[position] = new
        return f"{_op(old)} -> {_op(new)}"

    return edit


def _op(op: ast.AST) -> str:
    return {
        ast.Lt: "<",
        ast.LtE: "<=",
        ast.Gt: ">",
        ast.GtE: ">=",
        ast.Eq: "==",
        ast.NotEq: "!=",
        ast.Is: "is",
        ast.IsNot: "is not",
        ast.In: "in",
        ast.NotIn: "not in",
        ast.Add: "+",
        ast.Sub: "-",
        ast.Mult: "*",
        ast.FloorDiv: "//",
        ast.And: "and",
        ast.Or: "or",
    }[type(op)]


def _swap_binop(node: ast.AST) -> str:
    assert isinstance(node, ast.BinOp | ast.AugAssign)
    old = node.op
    node.op = _BINOP_SWAPS[type(old)]()
    return f"{_op(old)} -> {_op(node.op)}"


def _swap_boolop(node: ast.AST) -> str:
    assert isinstance(node, ast.BoolOp)
    old = node.op
    node.op = ast.Or() if isinstance(old, ast.And) else ast.And()
    return f"{_op(old)} -> {_op(node.op)}"


def _flip_bool(node: ast.AST) -> str:
    assert isinstance(node, ast.Constant)
    node.value = not node.value
    return f"{not node.value} -> {node.value}"


def _nudge(by: int) -> Edit:
    def edit(node: ast.AST) -> str:
        assert isinstance(node, ast.Constant)
        old = node.value
        assert isinstance(old, int)
        node.value = old + by
        return f"{old} -> {old + by}"

    return edit


def _swap_name(node: ast.AST) -> str:
    old = _name_of(node)
    if isinstance(node, ast.Name):
        node.id = _NAME_SWAPS[old]
    else:
        assert isinstance(node, ast.Attribute)
        node.attr = _NAME_SWAPS[old]
    return f"{old} -> {_NAME_SWAPS[old]}"


def _replacement(node: ast.AST) -> tuple[ast.AST, str] | None:
    """For edits that swap a whole node: the node that takes its place."""
    if isinstance(node, ast.UnaryOp):
        return node.operand, "drop `not`"
    if isinstance(node, ast.Break):
        return ast.Continue(), "break -> continue"
    if isinstance(node, ast.Continue):
        return ast.Break(), "continue -> break"
    if isinstance(node, ast.Expr):
        return ast.Pass(), f"drop `{ast.unparse(node)}`"
    return None


def _replacing(node: ast.AST) -> str:
    raise AssertionError("applied by _Replace")  # marker: the node is swapped, not edited


class _Replace(ast.NodeTransformer):
    def __init__(self, target: ast.AST, new: ast.AST) -> None:
        self.target, self.new = target, new

    def visit(self, node: ast.AST) -> ast.AST:
        if node is self.target:
            return ast.copy_location(self.new, node)
        visited: ast.AST = super().visit(node)
        return visited


def _apply(tree: ast.Module, index: int) -> tuple[int, str]:
    """Apply the ``index``-th edit to ``tree`` in place; its line and description."""
    for number, (node, edit) in enumerate(_sites(tree)):
        if number != index:
            continue
        line = getattr(node, "lineno", 0)
        if edit is _replacing:
            swap = _replacement(node)
            assert swap is not None
            _Replace(node, swap[0]).visit(tree)
            return line, swap[1]
        return line, edit(node)
    raise IndexError(index)


def mutants(source: str) -> Iterator[Mutant]:
    """Every mutant of ``source``, each compiled once to be sure it is valid Python."""
    tree = ast.parse(source)
    count = sum(1 for _ in _sites(tree))
    for index in range(count):
        copy_of = copy.deepcopy(tree)
        line, description = _apply(copy_of, index)
        mutated = ast.unparse(ast.fix_missing_locations(copy_of))
        compile(mutated, "<mutant>", "exec")
        yield Mutant(index, line, description, mutated)
