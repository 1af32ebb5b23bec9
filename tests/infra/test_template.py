"""infra/template.yaml: the retraining trigger, the Lambda, the API service and least-privilege IAM.

The template is read with a ``yaml.SafeLoader`` subclass that turns CloudFormation's short tags
(``!Ref``, ``!Sub``, ``!GetAtt``, ...) into their long JSON form, so these tests need only PyYAML.
The last test runs ``cfn-lint`` itself when it is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"

# ARNs as written in the template (Fn::Sub strings built from the BucketName parameter).
BUCKET_ARN = "arn:${AWS::Partition}:s3:::${BucketName}"
MODELS_ARN = BUCKET_ARN + "/models/*"
INCOMING_ARN = BUCKET_ARN + "/incoming/*"

# Actions that support no resource-level permissions: AWS requires Resource "*" for them.
RESOURCE_STAR_REQUIRED = {"ecr:GetAuthorizationToken"}
IAM_POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation short tags: ``!Sub x`` -> ``{"Fn::Sub": x}``."""


def _construct_short_tag(loader: CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_short_tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=CfnLoader)  # a SafeLoader subclass: no arbitrary objects
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return dict(template["Resources"])


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def of_type(resources: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in resources.items() if res["Type"] == kind}


def one_of_type(resources: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    found = of_type(resources, kind)
    assert len(found) == 1, f"expected one {kind}, found {sorted(found)}"
    return next(iter(found.items()))


def text(value: Any) -> str:
    """A Resource/ARN as comparable text: Fn::Sub strings as written, Ref/GetAtt symbolically."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (key, inner), *_ = value.items()
        if key == "Fn::Sub":
            return inner if isinstance(inner, str) else str(inner[0])
        if key == "Ref":
            return f"Ref:{inner}"
        if key == "Fn::GetAtt":
            return "GetAtt:" + ".".join(as_list(inner))
    return repr(value)


def role_statements(resources: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """Every statement granted to ``role``: its inline policies and any AWS::IAM::Policy attached to it."""
    statements: list[dict[str, Any]] = []
    for policy in resources[role]["Properties"].get("Policies", []):
        statements += as_list(policy["PolicyDocument"]["Statement"])
    policies = [res["Properties"] for res in resources.values() if res["Type"] in IAM_POLICY_TYPES]
    for props in policies:
        if {"Ref": role} in props.get("Roles", []):
            statements += as_list(props["PolicyDocument"]["Statement"])
    return statements


def all_iam_statements(resources: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, res in resources.items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                for statement in as_list(policy["PolicyDocument"]["Statement"]):
                    yield name, statement
        elif res["Type"] in IAM_POLICY_TYPES:
            for statement in as_list(props["PolicyDocument"]["Statement"]):
                yield name, statement


def grants(statements: list[dict[str, Any]], service: str) -> set[tuple[str, str]]:
    """(action, resource) pairs allowed for one service prefix, e.g. ``s3``."""
    pairs = set()
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            if action.startswith(service + ":"):
                pairs |= {(action, text(resource)) for resource in as_list(statement["Resource"])}
    return pairs


def list_bucket_prefixes(statements: list[dict[str, Any]]) -> list[str]:
    """The s3:prefix values that every s3:ListBucket grant is limited to (StringLike*)."""
    prefixes: list[str] = []
    for statement in statements:
        if "s3:ListBucket" in as_list(statement["Action"]):
            conditions = statement.get("Condition", {})
            operators = [op for op in conditions if op.startswith(("StringLike", "StringEquals"))]
            assert operators, f"unconditioned s3:ListBucket: {statement}"
            for operator in operators:
                prefixes += as_list(conditions[operator]["s3:prefix"])
    return prefixes


# ------------------------------------------------------------------ evaluating a few intrinsics


def evaluate(value: Any, parameters: dict[str, str]) -> Any:
    """Enough of CloudFormation to evaluate the derived ARNs: Ref, Fn::Split, Fn::Select, Fn::Sub."""
    if isinstance(value, list):
        return [evaluate(item, parameters) for item in value]
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        return parameters[value["Ref"]]
    if "Fn::Split" in value:
        delimiter, source = value["Fn::Split"]
        return str(evaluate(source, parameters)).split(delimiter)
    if "Fn::Select" in value:
        index, items = value["Fn::Select"]
        return evaluate(items, parameters)[int(index)]
    if "Fn::Sub" in value:
        body = value["Fn::Sub"]
        source, local = (body, {}) if isinstance(body, str) else (body[0], body[1])
        names = {**parameters, **{k: evaluate(v, parameters) for k, v in local.items()}}
        return re.sub(r"\$\{([\w:.]+)\}", lambda m: str(names[m.group(1)]), source)
    raise AssertionError(f"cannot evaluate {value}")


PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012"}


# ------------------------------------------------------------------ storage and trigger


def test_bucket_is_versioned_private_and_encrypted(resources: dict[str, Any]) -> None:
    name, bucket = one_of_type(resources, "AWS::S3::Bucket")
    props = bucket["Properties"]
    assert props["BucketName"] == {"Ref": "BucketName"}
    assert props["VersioningConfiguration"]["Status"] == "Enabled"
    block = props["PublicAccessBlockConfiguration"]
    assert all(block[key] is True for key in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls"))
    assert block["RestrictPublicBuckets"] is True
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert bucket["DeletionPolicy"] == "Retain", f"{name} holds every model version: keep it"


def test_notifications_fire_on_incoming_csvs_and_log_batch_markers_only(resources: dict[str, Any]) -> None:
    _, bucket = one_of_type(resources, "AWS::S3::Bucket")
    function_name, _ = one_of_type(resources, "AWS::Lambda::Function")
    notifications = bucket["Properties"]["NotificationConfiguration"]["LambdaConfigurations"]
    found = []
    for notification in notifications:
        assert notification["Event"].startswith("s3:ObjectCreated:")
        assert notification["Function"] == {"Fn::GetAtt": [function_name, "Arn"]}
        found.append({rule["Name"].lower(): rule["Value"] for rule in notification["Filter"]["S3Key"]["Rules"]})
    assert found == [{"prefix": "incoming/", "suffix": ".csv"}, {"prefix": "incoming/logs/", "suffix": "/_READY"}]
    # S3 refuses overlapping configurations: a suffix must not end the other one.
    assert not "/_READY".endswith(".csv")
    assert not ".csv".endswith("/_READY")


def test_s3_may_invoke_the_function_only_from_this_bucket_and_account(resources: dict[str, Any]) -> None:
    function_name, _ = one_of_type(resources, "AWS::Lambda::Function")
    permission_name, permission = one_of_type(resources, "AWS::Lambda::Permission")
    props = permission["Properties"]
    assert props["Action"] == "lambda:InvokeFunction"
    assert props["Principal"] == "s3.amazonaws.com"
    assert props["FunctionName"] in ({"Ref": function_name}, {"Fn::GetAtt": [function_name, "Arn"]})
    assert props["SourceAccount"] == {"Ref": "AWS::AccountId"}
    # Built from the parameter, not from the bucket resource: that is what avoids the cycle.
    assert props["SourceArn"] == {"Fn::Sub": BUCKET_ARN}
    _, bucket = one_of_type(resources, "AWS::S3::Bucket")
    assert permission_name in as_list(bucket.get("DependsOn", []))


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, list):
        for item in value:
            yield from _references(item)
    elif isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref":
                yield inner
            elif key == "Fn::GetAtt":
                yield as_list(inner)[0] if isinstance(inner, list) else inner.split(".")[0]
            elif key == "Fn::Sub":
                source = inner if isinstance(inner, str) else inner[0]
                yield from (m.split(".")[0] for m in re.findall(r"\$\{(?!!)([\w:.]+)\}", source))
                if isinstance(inner, list):
                    yield from _references(inner[1])
            else:
                yield from _references(inner)


def test_resources_have_no_circular_dependency(resources: dict[str, Any]) -> None:
    edges = {
        name: {ref for ref in _references(res.get("Properties", {})) if ref in resources}
        | set(as_list(res.get("DependsOn", [])))
        for name, res in resources.items()
    }
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, "circular dependency: " + " -> ".join((*path, name))
        if name not in done:
            for target in edges[name]:
                visit(target, (*path, name))
            done.add(name)

    for name in resources:
        visit(name, ())


# ------------------------------------------------------------------ retraining Lambda


def test_lambda_runs_the_image_one_at_a_time_with_a_dead_letter_queue(resources: dict[str, Any]) -> None:
    _, function = one_of_type(resources, "AWS::Lambda::Function")
    props = function["Properties"]
    assert props["PackageType"] == "Image"
    assert props["Code"] == {"ImageUri": {"Ref": "LambdaImageUri"}}
    assert props["ImageConfig"]["Command"] == ["handlers.retrain.handler"]
    assert props["ReservedConcurrentExecutions"] == 1
    assert props["Timeout"] == 900
    assert props["MemorySize"] == 3008
    queue_name, queue = next(iter(of_type(resources, "AWS::SQS::Queue").items()))
    assert props["DeadLetterConfig"]["TargetArn"] == {"Fn::GetAtt": [queue_name, "Arn"]}
    assert queue["Properties"]["MessageRetentionPeriod"] >= 4 * 24 * 3600


def test_lambda_environment_matches_the_trigger(resources: dict[str, Any]) -> None:
    _, bucket = one_of_type(resources, "AWS::S3::Bucket")
    _, function = one_of_type(resources, "AWS::Lambda::Function")
    env = function["Properties"]["Environment"]["Variables"]
    assert env["CCML_STORAGE"] == "s3"
    assert env["CCML_S3_BUCKET"] == {"Ref": "BucketName"}
    assert env["CCML_S3_MODEL_PREFIX"] == "models/"
    notification = bucket["Properties"]["NotificationConfiguration"]["LambdaConfigurations"][0]
    prefix = next(rule["Value"] for rule in notification["Filter"]["S3Key"]["Rules"] if rule["Name"] == "prefix")
    assert env["CCML_S3_DATA_PREFIX"] == prefix == "incoming/"
    # The Lambda's own writes (models/) must never match the trigger (incoming/).
    assert not env["CCML_S3_MODEL_PREFIX"].startswith(prefix)
    assert not prefix.startswith(env["CCML_S3_MODEL_PREFIX"])


# ------------------------------------------------------------------ API service


def test_load_balancer_health_check_is_ready(resources: dict[str, Any]) -> None:
    group_name, group = one_of_type(resources, "AWS::ElasticLoadBalancingV2::TargetGroup")
    props = group["Properties"]
    assert props["HealthCheckPath"] == "/ready"
    assert props["Port"] == 8000
    assert props["TargetType"] == "ip"
    _, service = one_of_type(resources, "AWS::ECS::Service")
    (binding,) = service["Properties"]["LoadBalancers"]
    assert binding["TargetGroupArn"] == {"Ref": group_name}
    assert binding["ContainerPort"] == 8000
    assert service["Properties"]["LaunchType"] == "FARGATE"
    assert service["Properties"]["DesiredCount"] == {"Ref": "DesiredCount"}


def test_api_container_reads_the_bucket_and_gets_the_key_as_a_secret(resources: dict[str, Any]) -> None:
    _, task = one_of_type(resources, "AWS::ECS::TaskDefinition")
    assert task["Properties"]["RequiresCompatibilities"] == ["FARGATE"]
    (container,) = task["Properties"]["ContainerDefinitions"]
    assert container["Image"] == {"Ref": "ApiImageUri"}
    assert [port["ContainerPort"] for port in container["PortMappings"]] == [8000]
    env = {item["Name"]: item["Value"] for item in container["Environment"]}
    assert env["CCML_STORAGE"] == "s3"
    assert env["CCML_S3_BUCKET"] == {"Ref": "BucketName"}
    assert env["CCML_S3_MODEL_PREFIX"] == "models/"
    assert (env["CCML_HOST"], env["CCML_PORT"]) == ("0.0.0.0", "8000")
    assert "CCML_API_KEY" not in env
    secrets = {item["Name"]: text(item["ValueFrom"]) for item in container["Secrets"]}
    assert secrets["CCML_API_KEY"].endswith(":parameter${ApiKeyParameterName}")
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"


def test_tasks_accept_traffic_from_the_load_balancer_only(resources: dict[str, Any]) -> None:
    _, balancer = one_of_type(resources, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    (balancer_group,) = balancer["Properties"]["SecurityGroups"]
    _, service = one_of_type(resources, "AWS::ECS::Service")
    (task_group,) = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"]
    task_rules = resources[task_group["Ref"]]["Properties"]["SecurityGroupIngress"]
    assert task_rules
    for rule in task_rules:
        assert rule["SourceSecurityGroupId"] == balancer_group
        assert (rule["FromPort"], rule["ToPort"]) == (8000, 8000)
        assert "CidrIp" not in rule
        assert "CidrIpv6" not in rule
    open_ports = set()
    for rule in resources[balancer_group["Ref"]]["Properties"]["SecurityGroupIngress"]:
        if "Fn::If" in rule:  # the HTTPS rule exists only with a certificate
            rule = rule["Fn::If"][1]
        assert rule["CidrIp"] == {"Ref": "AllowedIngressCidr"}
        open_ports.add(rule["FromPort"])
    assert open_ports <= {80, 443}
    # The load balancer may only talk to the tasks: no allow-all egress left in place.
    inline_egress = resources[balancer_group["Ref"]]["Properties"].get("SecurityGroupEgress")
    assert inline_egress, "without an inline egress rule EC2 keeps its default allow-all rule"
    assert all(rule.get("CidrIp") == "127.0.0.1/32" for rule in inline_egress)
    egress = [r["Properties"] for r in of_type(resources, "AWS::EC2::SecurityGroupEgress").values()]
    assert [(e["GroupId"], e["DestinationSecurityGroupId"], e["FromPort"]) for e in egress] == [
        (balancer_group, task_group, 8000)
    ]


# ------------------------------------------------------------------ IAM


def test_no_wildcard_actions_anywhere(resources: dict[str, Any]) -> None:
    for owner, statement in all_iam_statements(resources):
        assert "NotAction" not in statement, owner
        assert "NotResource" not in statement, owner
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{owner}: wildcard action {action}"


def test_resource_star_only_where_aws_requires_it(resources: dict[str, Any]) -> None:
    for owner, statement in all_iam_statements(resources):
        if "*" in [text(resource) for resource in as_list(statement["Resource"])]:
            assert set(as_list(statement["Action"])) <= RESOURCE_STAR_REQUIRED, owner


def test_roles_use_no_managed_policies(resources: dict[str, Any]) -> None:
    # AWS managed policies (AWSLambdaBasicExecutionRole, AmazonECSTaskExecutionRolePolicy, ...)
    # grant on Resource "*"; every grant here is written out.
    for name, role in of_type(resources, "AWS::IAM::Role").items():
        assert not role["Properties"].get("ManagedPolicyArns"), name


def test_s3_grants_are_scoped_to_the_bucket_models_or_incoming(resources: dict[str, Any]) -> None:
    for owner, statement in all_iam_statements(resources):
        if any(action.startswith("s3:") for action in as_list(statement["Action"])):
            for resource in as_list(statement["Resource"]):
                assert text(resource) in {BUCKET_ARN, MODELS_ARN, INCOMING_ARN}, f"{owner}: {resource}"
        for action in as_list(statement["Action"]):
            assert not action.startswith("s3:Delete"), owner


def _role_of(resources: dict[str, Any], kind: str, prop: str) -> str:
    _, owner = one_of_type(resources, kind)
    ref = owner["Properties"][prop]
    return str(ref["Fn::GetAtt"][0])


def test_api_role_reads_models_only(resources: dict[str, Any]) -> None:
    role = _role_of(resources, "AWS::ECS::TaskDefinition", "TaskRoleArn")
    statements = role_statements(resources, role)
    assert grants(statements, "s3") == {("s3:GetObject", MODELS_ARN), ("s3:ListBucket", BUCKET_ARN)}
    assert list_bucket_prefixes(statements) == ["models/*"]
    actions = {action for statement in statements for action in as_list(statement["Action"])}
    assert actions == {"s3:GetObject", "s3:ListBucket"}, "the API task needs nothing but reading the model store"
    trust = resources[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"]["Service"] for s in trust] == ["ecs-tasks.amazonaws.com"]


def test_lambda_role_reads_incoming_and_reads_writes_models(resources: dict[str, Any]) -> None:
    _, function = one_of_type(resources, "AWS::Lambda::Function")
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = role_statements(resources, role)
    assert grants(statements, "s3") == {
        ("s3:GetObject", INCOMING_ARN),
        # versioned bucket: the data source reads the exact version it sized
        ("s3:GetObjectVersion", INCOMING_ARN),
        ("s3:GetObject", MODELS_ARN),
        ("s3:PutObject", MODELS_ARN),
        ("s3:ListBucket", BUCKET_ARN),
    }
    # The model store, and the activity-log batches it lists to train on.
    assert list_bucket_prefixes(statements) == ["models/*", "incoming/logs/*"]
    queue_name, _ = one_of_type(resources, "AWS::SQS::Queue")
    assert grants(statements, "sqs") == {("sqs:SendMessage", f"GetAtt:{queue_name}.Arn")}
    log_group = text(function["Properties"]["LoggingConfig"]["LogGroup"]).removeprefix("Ref:")
    assert grants(statements, "logs") == {
        ("logs:CreateLogStream", f"GetAtt:{log_group}.Arn"),
        ("logs:PutLogEvents", f"GetAtt:{log_group}.Arn"),
    }
    services = {action.split(":")[0] for statement in statements for action in as_list(statement["Action"])}
    assert services == {"s3", "sqs", "logs"}
    trust = resources[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"]["Service"] for s in trust] == ["lambda.amazonaws.com"]


def test_execution_role_pulls_only_the_api_repository(resources: dict[str, Any], template: dict[str, Any]) -> None:
    role = _role_of(resources, "AWS::ECS::TaskDefinition", "ExecutionRoleArn")
    statements = role_statements(resources, role)
    uri = "210987654321.dkr.ecr.us-east-2.amazonaws.com/team/ccml-api:0123abc"
    assert re.fullmatch(template["Parameters"]["ApiImageUri"]["AllowedPattern"], uri)
    parameters = {**PSEUDO, "ApiImageUri": uri}
    pulls = [s for s in statements if "ecr:BatchGetImage" in as_list(s["Action"])]
    assert [evaluate(s["Resource"], parameters) for s in pulls] == [
        "arn:aws:ecr:us-east-2:210987654321:repository/team/ccml-api"
    ]
    assert grants(statements, "ssm") == {
        (
            "ssm:GetParameters",
            "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${ApiKeyParameterName}",
        )
    }


@pytest.mark.parametrize(
    ("uri", "valid"),
    [
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/ccml-api:3f2c1e0", True),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/org/ccml-lambda:v1.2.0", True),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/ccml-api", False),  # no tag
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/ccml-api@sha256:" + "a" * 64, False),  # digest
        ("docker.io/library/python:3.11-slim", False),
    ],
)
def test_image_uri_parameters_accept_tagged_ecr_images_only(template: dict[str, Any], uri: str, valid: bool) -> None:
    for name in ("ApiImageUri", "LambdaImageUri"):
        assert bool(re.fullmatch(template["Parameters"][name]["AllowedPattern"], uri)) is valid


def test_required_parameters_and_outputs(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    for name in ("ApiImageUri", "LambdaImageUri", "BucketName", "VpcId", "DesiredCount", "ApiKeyParameterName"):
        assert name in parameters
    assert parameters["TaskSubnetIds"]["Type"] == "List<AWS::EC2::Subnet::Id>"
    assert parameters["LoadBalancerSubnetIds"]["Type"] == "List<AWS::EC2::Subnet::Id>"
    assert {"ApiUrl", "BucketName", "FunctionName"} <= set(template["Outputs"])


def test_template_fits_an_inline_deploy() -> None:
    # `aws cloudformation deploy` without --s3-bucket sends the template inline: 51,200 bytes at most.
    assert TEMPLATE.stat().st_size < 51_200


# ------------------------------------------------------------------ cfn-lint


def _cfn_lint() -> str | None:
    beside = Path(sys.executable).with_name("cfn-lint")
    return str(beside) if beside.exists() else shutil.which("cfn-lint")


@pytest.mark.slow
def test_cfn_lint_reports_nothing() -> None:
    command = _cfn_lint()
    if command is None:
        pytest.skip("cfn-lint is not installed")
    result = subprocess.run(
        [command, "--", str(TEMPLATE)], capture_output=True, text=True, timeout=240, cwd=ROOT, check=False
    )
    assert (result.returncode, result.stdout.strip(), result.stderr.strip()) == (0, "", "")
