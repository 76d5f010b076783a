"""``python -m mediaguard.local.check``: validate every state machine the template declares.

``sam validate --lint`` does not look inside ASL files; this resolves the
DefinitionSubstitutions, refuses any placeholder left unresolved, and parses the
result with the same ASL parser that executes it locally.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from mediaguard.local.template import Stack


class AslError(ValueError):
    pass


def render(stack: Stack, logical: str) -> str:
    """The state machine's ASL with its DefinitionSubstitutions applied, as AWS would."""
    props = stack.resources[logical]["Properties"]
    text = (stack.root / props["DefinitionUri"]).read_text()
    for key, value in stack.resolve(props.get("DefinitionSubstitutions", {})).items():
        text = text.replace("${" + key + "}", str(value))
    left = sorted(set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", text)))
    if left:
        raise AslError(f"{logical}: placeholders without a DefinitionSubstitution: {left}")
    return text


def rendered_definitions(template: Path) -> dict[str, str]:
    stack = Stack.from_file(template)
    return {logical: render(stack, logical) for logical in stack.of_type("AWS::Serverless::StateMachine")}


def check_transitions(definition: dict, where: str = "") -> list[str]:
    """Problems with StartAt/Next/Default/Catch targets, which the parser accepts dangling."""
    states = definition.get("States", {})
    problems = []
    if definition.get("StartAt") not in states:
        problems.append(f"{where}StartAt {definition.get('StartAt')!r} is not a state")
    for name, state in states.items():
        targets = [state.get("Next"), state.get("Default")]
        targets += [c.get("Next") for c in state.get("Catch", [])]
        targets += [c.get("Next") for c in state.get("Choices", [])]
        for target in filter(None, targets):
            if target not in states:
                problems.append(f"{where}{name} -> {target!r}: no such state")
        terminal = state.get("Type") in ("Succeed", "Fail", "Choice") or state.get("End") is True
        if not terminal and "Next" not in state:
            problems.append(f"{where}{name}: neither Next nor End")
        for i, branch in enumerate(state.get("Branches", [])):
            problems += check_transitions(branch, f"{where}{name}[{i}].")
        inner = state.get("ItemProcessor") or state.get("Iterator")
        if inner:
            problems += check_transitions(inner, f"{where}{name}.")
    return problems


def check(template: Path) -> list[str]:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    checked = []
    for logical, text in rendered_definitions(template).items():
        try:
            AmazonStateLanguageParser.parse(text)
        except Exception as exc:  # noqa: BLE001 - the parser raises several unrelated types
            raise AslError(f"{logical}: invalid ASL: {exc}") from exc
        problems = check_transitions(json.loads(text))
        if problems:
            raise AslError(f"{logical}: {'; '.join(problems)}")
        checked.append(logical)
    return checked


def main() -> int:
    template = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("template.yaml")
    try:
        names = check(template)
    except AslError as exc:
        print(f"ASL check failed: {exc}", file=sys.stderr)
        return 1
    print(f"ASL OK: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
