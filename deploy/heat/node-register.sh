#!/bin/bash
# First boot of a VCA rendering node (run once by cloud-init, from vca-gpu-node.yaml): installs
# Node.js and the gpu-probe command, registers the node with the VCA through the signed
# contextualization hook — with its Heat membership, so the VCA knows which group member it is —
# and starts the probe with the node token the VCA answered.
#
# Reads /etc/vca/node-register.env (written by cloud-init from the template's parameters).
# Writes /etc/vca/gpu-probe.env (the probe's VCA_URL, VCA_NODE_ID, VCA_NODE_TOKEN) and
# /etc/vca/ticket-key (the node's ticket key, hex, for the streaming server's ticket check).
# For a test off OpenStack: VCA_ETC_DIR (instead of /etc/vca), VCA_METADATA_URL (instead of the
# metadata service) and VCA_REGISTER_ONLY=1 (no installation, no systemctl).
set -euo pipefail
umask 077

etc=${VCA_ETC_DIR:-/etc/vca}
metadata=${VCA_METADATA_URL:-http://169.254.169.254}
register_only=${VCA_REGISTER_ONLY:-}
# shellcheck source=/dev/null
set -a # the settings are read by the python steps below too
. "$etc/node-register.env"
set +a

log() { echo "vca-node-register: $*" | systemd-cat -t vca-node-register 2>/dev/null || echo "vca-node-register: $*" >&2; }

# Node.js 20 and the probe (the VCA package, built; its bin is gpu-probe).
if [ "$register_only" != 1 ]; then
  if [ ! -x /opt/node/bin/node ]; then
    mkdir -p /opt/node
    curl -fsSL --retry 10 --retry-delay 5 "$VCA_NODE_TARBALL_URL" | tar -xJ -C /opt/node --strip-components=1
  fi
  export PATH=/opt/node/bin:$PATH
  if [ ! -x /opt/vca-probe/bin/gpu-probe ]; then
    npm install --global --omit=dev --prefix /opt/vca-probe "$VCA_PROBE_PACKAGE_URL"
  fi
  /opt/vca-probe/bin/gpu-probe --help >/dev/null
fi

# Facts about this node: the Nova server id (also the node id), its address, and its Heat member name.
server_id=$(curl -fsS --retry 10 "$metadata/openstack/latest/meta_data.json" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["uuid"])')
host=$(curl -fsS --retry 5 "$metadata/latest/meta-data/local-ipv4" || hostname -I | awk '{print $1}')
# The member's stack is named <group stack>-<member resource name>-<short id> by Heat.
member=$(echo "$VCA_HEAT_MEMBER_STACK_NAME" | awk -F- '{print $(NF-1)}')
# Heat orders members by the member resource's creation time; the first boot is the closest time the
# node itself knows (kept across reruns). With the pre-delete hook Heat names the removed member
# itself, so this time only steers which nodes the VCA expects Heat to remove next.
if [ ! -s "$etc/created-at" ]; then date -u +%Y-%m-%dT%H:%M:%SZ >"$etc/created-at"; fi
created_at=$(cat "$etc/created-at")

export server_id host member created_at etc
body=$(python3 - <<'PY'
import json, os
env = os.environ
node = {
    "id": env["server_id"],
    "host": env["host"],
    "port": int(env["VCA_STREAM_PORT"]),
    "protocol": env["VCA_STREAM_PROTOCOL"],
    "gpus": [{"model": env["VCA_GPU_MODEL"], "count": int(env["VCA_GPU_COUNT"])}],
    "orchestrator": {
        "kind": "heat",
        "stackId": env["VCA_HEAT_ROOT_STACK_ID"],
        "group": env["VCA_HEAT_GROUP"],
        "member": env["member"],
        "serverId": env["server_id"],
        "createdAt": env["created_at"],
    },
}
if env.get("VCA_REGION"):
    node["labels"] = {"region": env["VCA_REGION"]}
print(json.dumps({
    "eventId": "heat-register-" + env["server_id"],
    "event": "scale-up",
    "group": env["VCA_HEAT_GROUP"],
    "nodes": [node],
}, separators=(",", ":")))
PY
)

# POST it signed (X-VCA-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, t + "." + body)>), retrying
# while the VCA is unreachable or busy; the event id makes a repeat a replay with the same answer.
register() {
  BODY="$body" python3 - <<'PY'
import hashlib, hmac, json, os, sys, time, urllib.request
env = os.environ
body = env["BODY"].encode()
t = str(int(time.time()))
signature = hmac.new(env["VCA_ORCHESTRATOR_SECRET"].encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
request = urllib.request.Request(
    env["VCA_URL"].rstrip("/") + "/v1/hooks/contextualize",
    data=body,
    method="POST",
    headers={"content-type": "application/json", "x-vca-signature": f"t={t},v1={signature}"},
)
with urllib.request.urlopen(request, timeout=15) as response:
    answer = json.load(response)
node = answer["registered"][0]
with open(env["etc"] + "/gpu-probe.env", "w") as out:
    out.write(f"VCA_URL={env['VCA_URL']}\nVCA_NODE_ID={node['id']}\nVCA_NODE_TOKEN={node['token']}\n")
with open(env["etc"] + "/ticket-key", "w") as out:
    out.write(node["ticketKey"] + "\n")
PY
}
delay=5
attempts=${VCA_REGISTER_ATTEMPTS:-60}
for attempt in $(seq 1 "$attempts"); do
  if register; then break; fi
  if [ "$attempt" = "$attempts" ]; then log "registration failed $attempts times; giving up"; exit 1; fi
  log "registration attempt $attempt failed; retrying in ${delay}s"
  sleep "$delay"
  delay=$((delay < 60 ? delay * 2 : 60))
done
log "registered as $server_id (member $member of $VCA_HEAT_GROUP)"

if [ "$register_only" != 1 ]; then
  systemctl daemon-reload
  systemctl enable --now vca-gpu-probe.service
fi
