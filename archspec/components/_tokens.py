"""What the token-axis mixers (``token_mlp``, ``token_linear``) share: the token count their weights fit."""

from __future__ import annotations

from archspec.nodes import PlanProblem, Shape


def token_count(tokens: Shape, stated: int | None, what: str) -> int:
    """The number of tokens N (a class token in front included) that ``what``'s weights are made for.

    ``stated`` is the count the spec says it was made for, if it says one: an input size that gives
    another count is a plan problem at ``tokens``, named before any weight is allocated.
    """
    if not tokens.tokens or tokens.grid is None:
        raise PlanProblem("type", f"{what} needs tokens of a known count (a token grid)")
    count = tokens.dims[0]
    if stated is not None and count != stated:
        height, width = tokens.grid
        made = f"the {height}×{width} grid" + (f" and {tokens.prefix} class token(s)" if tokens.prefix else "")
        raise PlanProblem(
            "tokens",
            f"{what} made for {stated} tokens gets {count} ({made}): its weights act along the token axis, "
            "so the input size must give the count the spec states",
        )
    return count
