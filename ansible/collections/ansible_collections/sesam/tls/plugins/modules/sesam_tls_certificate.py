#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sesam-tls contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

# A thin layer over `sesam-tls ensure --json`: the module only turns its
# parameters into the desired state (JSON on the tool's stdin, so the secrets
# never appear in a process list) and the tool's JSON answer into Ansible's.
# All decisions are the tool's, so the node's own Python (whatever Ansible
# accepts) needs no library: sesam-tls may be the one-file executable, the
# container wrapper or a pip install.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: sesam_tls_certificate
short_description: Ensure the TLS certificate of a self-hosted Sesam node
version_added: "0.1.0"
description:
  - Makes the node's certificate what the task describes (provider, names, key type, deployment and renewal
    settings), through C(sesam-tls ensure --json) on the node.
  - Does only what is needed, in this order of cost - nothing, C(reconfigure) (recorded settings only),
    C(issue), C(import) or C(renew). A second run in a row reports C(ok).
  - Deploys into the node's ssl folder, patches the sesam-agent config, reloads or restarts the C(nginx)
    container, verifies by TLS handshake when O(deploy.verify) is set, and restores the previous pair on failure.
  - The desired state, secrets included, is passed to C(sesam-tls) on its standard input, never on its
    command line; secrets are never recorded.
author:
  - sesam-tls contributors (@sesam-community)
requirements:
  - C(sesam-tls) on the node (the one-file executable, the container wrapper, or a pip install), version with
    the C(ensure) verb
options:
  provider:
    description:
      - Where the certificate comes from.
    type: str
    required: true
    choices: [selfsigned, acme, import]
  names:
    description:
      - The DNS names the certificate covers (no wildcards; they need DNS-01, which this module does not offer).
    type: list
    elements: str
    default: []
  ips:
    description:
      - IP addresses the certificate covers.
    type: list
    elements: str
    default: []
  key_type:
    description:
      - The key type of a new certificate (C(ecdsa-p256), C(ecdsa-p384), C(rsa-2048), C(rsa-3072), C(rsa-4096)).
      - Checked by C(sesam-tls); ignored for O(provider=import), where the files decide.
    type: str
    default: ecdsa-p256
  days:
    description:
      - Lifetime of a self-signed certificate (default 365).
    type: int
  key_policy:
    description:
      - What renewals do with the key; default V(reuse) for self-signed, V(new) for ACME.
    type: str
    choices: [reuse, new]
  renew_before_days:
    description:
      - Renew when fewer days are left; by default the tool's own rule (ARI window, or a third of the lifetime).
    type: int
  replace:
    description:
      - Allow replacing a managed certificate from another provider (as C(sesam-tls issue --replace)).
    type: bool
    default: false
  acme:
    description:
      - The ACME CA and how the HTTP-01 challenge is answered (O(provider=acme)).
    type: dict
    suboptions:
      directory:
        description: ACME directory URL; default Let's Encrypt (or its staging CA with O(acme.staging)).
        type: str
      staging:
        description: Use Let's Encrypt's staging directory.
        type: bool
        default: false
      email:
        description: Contact address of a new account.
        type: str
      agree_tos:
        description: Agree to the CA's terms of service (needed for a new account).
        type: bool
        default: false
      ca_bundle:
        description: PEM file that verifies a private CA's directory.
        type: path
      profile:
        description: ACME profile to request.
        type: str
      http01:
        description: How HTTP-01 is answered.
        type: str
        choices: [auto, standalone, webroot, stop-nginx]
      http_port:
        description: Port of the standalone HTTP-01 server (default 80).
        type: int
      http_address:
        description: Addresses the standalone server listens on (default every IPv4 and IPv6 address).
        type: list
        elements: str
      webroot:
        description: Folder another web server serves, for O(acme.http01=webroot).
        type: path
      eab_kid:
        description: External Account Binding key id.
        type: str
      eab_hmac:
        description: External Account Binding HMAC key; used once to register the account, never recorded.
        type: str
  import_files:
    description:
      - The operator's own certificate files (O(provider=import)); recognised by content (PEM, DER, PKCS#12).
    type: dict
    suboptions:
      cert_file:
        description: The certificate (or PKCS#12) file on the node.
        type: path
        required: true
      key_file:
        description: The key file, when not in O(import_files.cert_file).
        type: path
      chain_file:
        description: The intermediates, when not in O(import_files.cert_file).
        type: path
      password:
        description: Decrypts an encrypted key or PKCS#12 file; never recorded or logged.
        type: str
  deploy:
    description:
      - How the certificate is deployed; recorded, so the renewal timer does the same.
    type: dict
    suboptions:
      verify:
        description: C(HOST:PORT) that must serve the new certificate (TLS handshake) after deploying.
        type: str
      verify_name:
        description: SNI name for O(deploy.verify).
        type: str
      reload_mode:
        description: V(auto) restarts nginx when the agent config changed, else reloads.
        type: str
        choices: [auto, reload, restart]
      restart:
        description: V(false) writes files and agent config only and leaves nginx alone.
        type: bool
      timeout:
        description: Seconds for nginx to come up and for verification.
        type: float
      metrics_file:
        description: Prometheus textfile the tool writes.
        type: path
  node:
    description:
      - Where the node's parts are, when not Sesam's defaults (C(sesam-tls) flags of the same names).
    type: dict
    suboptions:
      root:
        description: Prefix every default path (a rehearsal in a scratch folder).
        type: path
      ssl_dir:
        description: The host folder nginx mounts (default C(/sesam/nginx/conf/ssl)).
        type: path
      container_ssl_dir:
        description: That folder inside the container (default C(/etc/nginx/includes.d/ssl)).
        type: str
      agent_config:
        description: The sesam-agent config (default C(/etc/sesam-agent/config.json)).
        type: path
      container:
        description: The nginx container (default C(nginx)).
        type: str
      state_dir:
        description: The sesam-tls state folder (default C(/var/lib/sesam-tls)).
        type: path
      docker_host:
        description: The Docker engine (default the local socket).
        type: str
  executable:
    description:
      - The C(sesam-tls) command; a name is looked up on the node's C(PATH), or give a path
        (for example C(/usr/local/sbin/sesam-tls-docker) for the container image).
    type: str
    default: sesam-tls
attributes:
  check_mode:
    support: full
    description: Only reads; no ACME order or challenge, no nginx stop, no write.
  diff_mode:
    support: full
    description: Shows provider, CA, names, key type, serial, expiry and settings before and after.
notes:
  - New orders at Let's Encrypt count against 50 certificates per registered domain per week; roll out to a
    few hosts at a time (C(serial)) and against the staging directory first.
seealso:
  - name: sesam-tls
    description: The tool this module runs.
    link: https://github.com/sesam-community/sesam-tls
"""

EXAMPLES = r"""
- name: A self-signed certificate for a test node
  sesam.tls.sesam_tls_certificate:
    provider: selfsigned
    names: [node.example.com]
    deploy:
      verify: 127.0.0.1:443

- name: Let's Encrypt over HTTP-01, staging first
  sesam.tls.sesam_tls_certificate:
    provider: acme
    names: ["{{ inventory_hostname }}"]
    acme:
      staging: true
      email: ops@example.com
      agree_tos: true
    deploy:
      verify: 127.0.0.1:443

- name: The company's CA over ACME with External Account Binding
  sesam.tls.sesam_tls_certificate:
    provider: acme
    names: [node.example.com]
    acme:
      directory: https://acme.your-ca.example/directory
      eab_kid: "{{ eab_kid }}"
      eab_hmac: "{{ vault_eab_hmac }}"
      email: ops@example.com
      agree_tos: true

- name: Our own certificate from a PKCS#12 file
  sesam.tls.sesam_tls_certificate:
    provider: import
    names: [node.example.com]
    import_files:
      cert_file: /root/node.pfx
      password: "{{ vault_pfx_password }}"
"""

RETURN = r"""
actions:
  description: What was done (or, in check mode, would be), in order - reconfigure, issue, import, renew.
  returned: success
  type: list
  elements: str
  sample: [issue]
reasons:
  description: Why, one line per change found.
  returned: success
  type: list
  elements: str
  sample: ["no certificate is managed on this node"]
before:
  description: The managed certificate before the run (null when none was managed).
  returned: success
  type: dict
  sample: {"provider": "selfsigned", "names": ["node.example.com"], "not_after": "2027-12-02T05:00:00+00:00"}
after:
  description: The managed certificate after the run; in check mode what is known before it exists.
  returned: success
  type: dict
  sample: {"provider": "acme", "names": ["node.example.com"], "not_after": "(new)"}
exit_code:
  description: The exit code of C(sesam-tls) when it failed (2 a bad value, 3 an unusable file, 7 nginx refused it, ...).
  returned: failure
  type: int
  sample: 2
"""

import json  # noqa: E402 - Ansible modules import after their documentation

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

NODE_FLAGS = ("root", "ssl_dir", "container_ssl_dir", "agent_config", "container", "state_dir", "docker_host")


def _clean(value):
    """The parameters as the desired state: options not given are left out (the tool's defaults apply)."""
    if isinstance(value, dict):
        return dict((k, _clean(v)) for k, v in value.items() if v is not None)
    return value


def desired_state(params):
    desired = {
        "provider": params["provider"],
        "names": params["names"] or [],
        "ips": params["ips"] or [],
        "key_type": params["key_type"],
        "days": params["days"],
        "key_policy": params["key_policy"],
        "renew_before_days": params["renew_before_days"],
        "replace": params["replace"],
    }
    for section in ("acme", "import_files", "deploy"):
        if params[section]:
            desired[section] = params[section]
    return _clean(desired)


def command(module, params):
    exe = params["executable"]
    if "/" not in exe:
        exe = module.get_bin_path(exe, required=True)
    cmd = [exe, "ensure", "--json"]
    if module.check_mode:
        cmd.append("--check")
    for name in NODE_FLAGS:
        value = (params["node"] or {}).get(name)
        if value:
            cmd += ["--" + name.replace("_", "-"), str(value)]
    return cmd


def main():
    module = AnsibleModule(
        argument_spec=dict(
            provider=dict(type="str", required=True, choices=["selfsigned", "acme", "import"]),
            names=dict(type="list", elements="str", default=[]),
            ips=dict(type="list", elements="str", default=[]),
            key_type=dict(type="str", default="ecdsa-p256"),
            days=dict(type="int"),
            key_policy=dict(type="str", choices=["reuse", "new"]),
            renew_before_days=dict(type="int"),
            replace=dict(type="bool", default=False),
            acme=dict(type="dict", options=dict(
                directory=dict(type="str"),
                staging=dict(type="bool", default=False),
                email=dict(type="str"),
                agree_tos=dict(type="bool", default=False),
                ca_bundle=dict(type="path"),
                profile=dict(type="str"),
                http01=dict(type="str", choices=["auto", "standalone", "webroot", "stop-nginx"]),
                http_port=dict(type="int"),
                http_address=dict(type="list", elements="str"),
                webroot=dict(type="path"),
                eab_kid=dict(type="str"),
                eab_hmac=dict(type="str", no_log=True),
            )),
            import_files=dict(type="dict", options=dict(
                cert_file=dict(type="path", required=True),
                key_file=dict(type="path"),
                chain_file=dict(type="path"),
                password=dict(type="str", no_log=True),
            )),
            deploy=dict(type="dict", options=dict(
                verify=dict(type="str"),
                verify_name=dict(type="str"),
                reload_mode=dict(type="str", choices=["auto", "reload", "restart"]),
                restart=dict(type="bool"),
                timeout=dict(type="float"),
                metrics_file=dict(type="path"),
            )),
            node=dict(type="dict", options=dict(
                root=dict(type="path"),
                ssl_dir=dict(type="path"),
                container_ssl_dir=dict(type="str"),
                agent_config=dict(type="path"),
                container=dict(type="str"),
                state_dir=dict(type="path"),
                docker_host=dict(type="str"),
            )),
            executable=dict(type="str", default="sesam-tls"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    cmd = command(module, params)
    rc, out, err = module.run_command(cmd, data=json.dumps(desired_state(params)), binary_data=True,
                                      environ_update={"LC_ALL": "C.UTF-8"})
    try:
        answer = json.loads(out)
    except ValueError:
        lines = [line for line in (err or "").splitlines() if line.strip()]
        module.fail_json(msg=lines[-1] if lines else "sesam-tls gave no answer (exit code %d)" % rc,
                         rc=rc, exit_code=rc)
    if rc != 0 or answer.get("failed"):
        module.fail_json(msg=answer.get("msg") or "sesam-tls failed (exit code %d)" % rc, rc=rc,
                         exit_code=answer.get("exit_code", rc))
    result = dict(changed=bool(answer["changed"]), actions=answer["actions"], reasons=answer["reasons"],
                  before=answer["before"], after=answer["after"])
    if module._diff:
        result["diff"] = dict(before=answer["before"] or {}, after=answer["after"] or {},
                              before_header="managed certificate", after_header="desired certificate")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
