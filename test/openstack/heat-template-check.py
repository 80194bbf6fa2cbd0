"""Loads deploy/heat/ with Heat's own code (Debian python3-heat) and prints what it found, as JSON.

Run by test/openstack/heat-deploy.test.ts with the system python (/usr/bin/python3); the test skips
when Heat is not importable. Uses Heat's template and environment parsers, the HOT version's section
validation, a stack validation of the resource templates (no cloud is asked), and the environment's
hook matching for the nested stacks a scale-down walks through (root -> group -> member -> server).
"""
import json
import os
import sys

from oslo_config import cfg

from heat.common import config as heat_config  # noqa: F401  (registers Heat's options)
from heat.common import context, environment_format, template_format
from heat.engine import constraints, environment, resource, resources
from heat.engine import stack as parser
from heat.engine import template

cfg.CONF([], project="heat", default_config_files=[])
# No cloud here: Heat would ask Keystone whether Nova and Aodh exist before checking a resource.
resource.Resource._validate_service_availability = lambda *args, **kwargs: None
# Nor images, flavors, networks and key pairs to look up (the custom constraints of their properties).
constraints.CustomConstraint._is_valid = lambda *args, **kwargs: True
heat_dir = sys.argv[1]


def read(name):
    with open(os.path.join(heat_dir, name)) as handle:
        return handle.read()


resources.initialise()
root = template_format.parse(read("vca-stack.yaml"))
member = template_format.parse(read("vca-gpu-node.yaml"))
environment_body = environment_format.parse(read("vca-environment.yaml"))
files = {
    "vca-gpu-node.yaml": read("vca-gpu-node.yaml"),
    "node-register.sh": read("node-register.sh"),
    "../systemd/vca-gpu-probe.service": read("../systemd/vca-gpu-probe.service"),
}
params = {
    "flavor": "g1.gpu",
    "image": "gpu-image",
    "network": "net",
    "key_name": "key",
    "vca_url": "https://vca.example.com",
    "orchestrator_secret": "secret",
    "probe_package_url": "https://files.example.com/vca.tgz",
    "vca_alarm_up_url": "https://vca.example.com/v1/hooks/aodh?action=UP",
    "vca_alarm_down_url": "https://vca.example.com/v1/hooks/aodh?action=DOWN",
}
ctx = context.RequestContext(user_id="u", project_id="p", is_admin=True, auth_token="t")


def validate(body, parameters):
    env = environment.Environment(environment_body)
    env.load({"parameters": parameters})
    tmpl = template.Template(body, env=env, files=files)
    tmpl.validate()
    stack = parser.Stack(ctx, "vca", tmpl)
    stack.validate(validate_res_tmpl_only=True)
    return {name: d.resource_type for name, d in stack.t.resource_definitions(stack).items()}


root_resources = validate(root, params)
member_params = {
    key: params[key]
    for key in ("flavor", "image", "network", "key_name", "vca_url", "orchestrator_secret", "probe_package_url")
}
member_params.update(
    {"root_stack_id": "r", "group_name": "gpu_nodes", "gpu_model": "L4", "node_tarball_url": "https://n/node.tar.xz"}
)
member_resources = validate(member, member_params)

env = environment.Environment(environment_body)
group_env = environment.get_child_environment(env, {}, child_resource_name="gpu_nodes")
member_env = environment.get_child_environment(group_env, {}, child_resource_name="ab3kxw4zyk2c")
print(
    json.dumps(
        {
            "templateClass": type(template.Template(root, env=env, files=files)).__name__,
            "rootResources": root_resources,
            "memberResources": member_resources,
            "memberType": env.registry.get_resource_info("VCA::GpuNode").value,
            "hooks": {
                "rootOnGroup": env.registry.matches_hook("gpu_nodes", "pre-delete"),
                "groupOnMember": group_env.registry.matches_hook("ab3kxw4zyk2c", "pre-delete"),
                "memberOnServer": member_env.registry.matches_hook("server", "pre-delete"),
                "memberOnConfig": member_env.registry.matches_hook("node_config", "pre-delete"),
            },
        }
    )
)
