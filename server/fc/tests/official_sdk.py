"""Drives the FC simulator with Alibaba's official Python SDK (alibabacloud-fc20230330), so the
simulator is checked against the real wire format: every operation the `fc` runtime uses, then
refusals the real service gives (bad secret, unknown key, missing field, bad enum value).

usage: official_sdk.py ENDPOINT(host:port) ACCESS_KEY_ID ACCESS_KEY_SECRET
"""
import json, sys, time

from alibabacloud_fc20230330 import models as m
from alibabacloud_fc20230330.client import Client
from alibabacloud_tea_openapi.utils_models import Config

endpoint, key, secret = sys.argv[1], sys.argv[2], sys.argv[3]


def client(k=key, s=secret):
    return Client(Config(access_key_id=k, access_key_secret=s, endpoint=endpoint, protocol="http", region_id="cn-hangzhou"))


c = client()
fn = "ws-sdk-1"
created = c.create_function(m.CreateFunctionRequest(body=m.CreateFunctionInput(
    function_name=fn, runtime="custom-container", handler="index.handler", cpu=1, memory_size=2048,
    disk_size=512, timeout=86400, instance_concurrency=100,
    custom_container_config=m.CustomContainerConfig(image="registry.example.com/ns/jupyter-python:1", port=9000),
    environment_variables={"QINGTING_WORKSPACE_ID": "1"},
    vpc_config=m.VPCConfig(vpc_id="vpc-1", v_switch_ids=["vsw-1"], security_group_id="sg-1"),
    nas_config=m.NASConfig(user_id=1000, group_id=1000, mount_points=[
        m.NASMountConfig(server_addr="nas.example.com:/u/alice/1/files", mount_dir="/workspace", enable_tls=False)]),
    instance_lifecycle_config=m.InstanceLifecycleConfig(
        initializer=m.LifecycleHook(handler="initialize", timeout=60), pre_stop=m.LifecycleHook(handler="pre-stop", timeout=60)),
)))
assert created.body.function_name == fn and created.body.state == "Pending", created.body.to_map()


def wait_active():
    for _ in range(50):
        got = c.get_function(fn, m.GetFunctionRequest())
        if got.body.state == "Active" and got.body.last_update_status == "Successful":
            return got
        time.sleep(0.1)
    raise AssertionError(got.body.to_map())


wait_active()
updated = c.update_function(fn, m.UpdateFunctionRequest(body=m.UpdateFunctionInput(memory_size=4096)))
assert updated.body.last_update_status == "InProgress"
assert wait_active().body.memory_size == 4096

trig = c.create_trigger(fn, m.CreateTriggerRequest(body=m.CreateTriggerInput(
    trigger_name="http", trigger_type="http", qualifier="LATEST",
    trigger_config=json.dumps({"authType": "anonymous", "methods": ["GET", "POST"], "disableURLInternet": True}))))
assert trig.body.http_trigger.url_internet.startswith("https://"), trig.body.to_map()
assert [t.trigger_name for t in c.list_triggers(fn, m.ListTriggersRequest()).body.triggers] == ["http"]

domain = "alice-one.ws.example.com"
c.create_custom_domain(m.CreateCustomDomainRequest(body=m.CreateCustomDomainInput(
    domain_name=domain, protocol="HTTPS",
    cert_config=m.CertConfig(cert_name="wildcard", certificate="-----BEGIN CERTIFICATE-----", private_key="-----BEGIN PRIVATE KEY-----"),
    route_config=m.RouteConfig(routes=[m.PathConfig(path="/*", function_name=fn, qualifier="LATEST")]))))
assert c.get_custom_domain(domain).body.domain_name == domain

c.put_provision_config(fn, m.PutProvisionConfigRequest(qualifier="LATEST", body=m.PutProvisionConfigInput(default_target=1)))
assert c.get_provision_config(fn, m.GetProvisionConfigRequest(qualifier="LATEST")).body.default_target == 1
assert len(c.list_instances(fn, m.ListInstancesRequest()).body.instances) == 1
c.disable_function_invocation(fn, m.DisableFunctionInvocationRequest(abort_ongoing_request=True, reason="stopped"))
assert len(c.list_instances(fn, m.ListInstancesRequest()).body.instances) == 0
c.enable_function_invocation(fn)
c.delete_provision_config(fn, m.DeleteProvisionConfigRequest(qualifier="LATEST"))

# Refusals, with the real service's codes.
def code_of(call):
    try:
        call()
    except Exception as e:  # noqa: BLE001 - the SDK raises its own error type
        return getattr(e, "code", str(e))
    return None

assert code_of(lambda: client(s="wrong").get_function(fn, m.GetFunctionRequest())) == "SignatureDoesNotMatch"
assert code_of(lambda: client(k="nobody").get_function(fn, m.GetFunctionRequest())) == "InvalidAccessKeyId.NotFound"
assert code_of(lambda: c.get_function("nope", m.GetFunctionRequest())) == "FunctionNotFound"
assert code_of(lambda: c.delete_function(fn)) == "FunctionNotEmpty"
assert code_of(lambda: c.create_function(m.CreateFunctionRequest(body=m.CreateFunctionInput(function_name="x2", handler="h")))) == "InvalidArgument"
assert code_of(lambda: c.create_function(m.CreateFunctionRequest(body=m.CreateFunctionInput(function_name="x3", handler="h", runtime="cobol")))) == "InvalidArgument"
assert code_of(lambda: c.create_function(m.CreateFunctionRequest(body=m.CreateFunctionInput(
    function_name=fn, runtime="custom-container", handler="h", custom_container_config=m.CustomContainerConfig(image="i"))))) == "FunctionAlreadyExists"

c.delete_custom_domain(domain)
c.delete_trigger(fn, "http")
c.delete_function(fn)
assert code_of(lambda: c.get_function(fn, m.GetFunctionRequest())) == "FunctionNotFound"
print("official SDK: all operations accepted, refusals match")
