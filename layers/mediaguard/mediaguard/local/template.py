"""Read a SAM/CloudFormation template and resolve the intrinsics local mode needs.

moto's CloudFormation ignores DefinitionSubstitutions, bucket notifications and
SAM transforms, so local mode resolves names itself and deploys the few resource
types the pipeline uses directly.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ACCOUNT_ID = "123456789012"  # moto's default account
_NO_VALUE = object()  # AWS::NoValue: the property or list element is left out


class _CfnLoader(yaml.SafeLoader):
    pass


def _tag_constructor(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tag_constructor)


def load_template(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


@dataclass
class Stack:
    """A template plus the physical names local mode gives its resources."""

    template: dict
    root: Path
    name: str = "mediaguard-local"
    region: str = "us-east-1"

    parameter_overrides: dict[str, str] | None = None

    def __post_init__(self) -> None:
        self.parameters = {
            k: str(v.get("Default", "")) for k, v in self.template.get("Parameters", {}).items()
        }
        self.parameters.update(self.parameter_overrides or {})
        self.conditions = {name: bool(self._condition(expr)) for name, expr in self.template.get("Conditions", {}).items()}
        # Resources whose Condition is false do not exist, as in CloudFormation.
        self.resources: dict[str, dict] = {
            k: v for k, v in self.template.get("Resources", {}).items()
            if "Condition" not in v or self.conditions[v["Condition"]]
        }

    @classmethod
    def from_file(cls, path: Path, **kwargs: Any) -> Stack:
        return cls(load_template(path), path.parent, **kwargs)

    # -- names ---------------------------------------------------------------
    def physical_name(self, logical: str) -> str:
        resource = self.resources[logical]
        props = resource.get("Properties", {})
        rtype = resource["Type"]
        if rtype == "AWS::S3::Bucket" and "BucketName" in props:
            return self.resolve(props["BucketName"])
        if rtype == "AWS::Logs::LogGroup" and "LogGroupName" in props:
            return self.resolve(props["LogGroupName"])
        if rtype == "AWS::Events::EventBus":
            return self.resolve(props["Name"])
        if rtype == "AWS::SQS::Queue" and "QueueName" in props:
            return self.resolve(props["QueueName"])
        name = f"{self.name}-{logical}"
        return name.lower() if rtype == "AWS::S3::Bucket" else name

    def ref(self, logical: str) -> str:
        pseudo = {
            "AWS::StackName": self.name,
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if logical in pseudo:
            return pseudo[logical]
        if logical in self.parameters:
            return self.parameters[logical]
        rtype = self.resources[logical]["Type"]
        name = self.physical_name(logical)
        if rtype == "AWS::Serverless::StateMachine":
            return f"arn:aws:states:{self.region}:{ACCOUNT_ID}:stateMachine:{name}"
        if rtype == "AWS::SQS::Queue":  # Ref of a queue is its URL
            return f"https://sqs.{self.region}.amazonaws.com/{ACCOUNT_ID}/{name}"
        if rtype == "AWS::Serverless::LayerVersion":
            return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:layer:{name}:1"
        return name

    def get_att(self, logical: str, attribute: str) -> str:
        rtype = self.resources[logical]["Type"]
        name = self.physical_name(logical)
        if attribute == "Arn":
            return {
                "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
                "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{self.region}:{ACCOUNT_ID}:table/{name}",
                "AWS::Serverless::Function": f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{name}",
                "AWS::Logs::LogGroup": f"arn:aws:logs:{self.region}:{ACCOUNT_ID}:log-group:{name}:*",
                "AWS::Serverless::StateMachine": self.ref(logical),
                "AWS::Events::EventBus": f"arn:aws:events:{self.region}:{ACCOUNT_ID}:event-bus/{name}",
                "AWS::SQS::Queue": f"arn:aws:sqs:{self.region}:{ACCOUNT_ID}:{name}",
            }[rtype]
        if attribute in ("Name", "QueueName"):
            return name
        if attribute == "StreamArn" and rtype == "AWS::DynamoDB::Table":
            # Only a name for it: the real ARN carries a label moto picks at creation, which
            # LocalCloud reads back when it wires the stream's event source mapping.
            return f"arn:aws:dynamodb:{self.region}:{ACCOUNT_ID}:table/{name}/stream/local"
        raise KeyError(f"local mode does not resolve {logical}.{attribute}")

    # -- intrinsics ------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref" and arg == "AWS::NoValue":
                return _NO_VALUE
            if key == "Fn::If":
                name, when_true, when_false = arg
                return self.resolve(when_true if self.conditions[name] else when_false)
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                return self.get_att(*arg)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Join":
                return arg[0].join(str(self.resolve(v)) for v in arg[1])
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def _condition(self, expr: Any) -> Any:
        """Evaluate a Conditions entry: Equals / Not / And / Or / Condition over parameters."""
        if isinstance(expr, dict) and len(expr) == 1:
            (key, arg), = expr.items()
            if key == "Fn::Equals":
                return self._condition(arg[0]) == self._condition(arg[1])
            if key == "Fn::Not":
                return not self._condition(arg[0])
            if key == "Fn::And":
                return all(self._condition(a) for a in arg)
            if key == "Fn::Or":
                return any(self._condition(a) for a in arg)
            if key == "Condition":
                return self._condition(self.template["Conditions"][arg])
            if key == "Ref":
                return self.parameters.get(arg, arg)
            if key == "Fn::Join":  # over a CommaDelimitedList parameter, held here as "A,B"
                values = self._condition(arg[1])
                values = values.split(",") if isinstance(values, str) else [self._condition(v) for v in values]
                return arg[0].join(str(v) for v in values)
        return expr

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def replace(match: re.Match) -> str:
            token = match.group(1)
            if token.startswith("!"):
                return "${" + token[1:] + "}"
            if token in variables:
                return str(self.resolve(variables[token]))
            if "." in token and not token.startswith("AWS::"):
                logical, attribute = token.split(".", 1)
                return self.get_att(logical, attribute)
            return self.ref(token)

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    # -- SAM views -------------------------------------------------------------
    def of_type(self, rtype: str) -> dict[str, dict]:
        return {k: v for k, v in self.resources.items() if v["Type"] == rtype}

    def function_properties(self, logical: str) -> dict:
        """Function properties with SAM Globals merged the way SAM merges them:
        maps merge, lists (Layers) append, scalars override."""
        merged = copy.deepcopy(self.template.get("Globals", {}).get("Function", {}))
        for key, value in self.resources[logical].get("Properties", {}).items():
            if key == "Environment":
                variables = merged.setdefault("Environment", {}).setdefault("Variables", {})
                variables.update(value.get("Variables", {}))
            elif isinstance(value, list) and isinstance(merged.get(key), list):
                merged[key] = merged[key] + value
            else:
                merged[key] = value
        return merged
