#!/usr/bin/env bash
# Make an SROS2 keystore for a cooperative_fusion platoon with openssl only
# (no `ros2 security`, which the PyPI wheels do not ship).
#
#   scripts/make_keystore.sh KEYSTORE [VEHICLE ...]      # default vehicles: v1 v2 v3 v4
#
# Layout (what rcl / rmw_security_common look for, as `ros2 security
# create_keystore` + `create_enclave` make it):
#
#   KEYSTORE/public/{identity_ca,permissions_ca}.cert.pem
#   KEYSTORE/private/{identity_ca,permissions_ca}.key.pem
#   KEYSTORE/enclaves/governance.{xml,p7s}
#   KEYSTORE/enclaves/cooperative_fusion/<name>/
#       cert.pem key.pem identity_ca.cert.pem permissions_ca.cert.pem
#       governance.p7s permissions.xml permissions.p7s
#
# Enclaves: /cooperative_fusion/<v> per vehicle, /cooperative_fusion/edge
# (fusion + twin) and /cooperative_fusion/sim (a bag replay: it publishes
# /clock and every vehicle's sensor topics, so it must not share a vehicle's
# grant).
#
# Governance: unauthenticated participants are refused (join access control),
# discovery, liveliness and every topic's data and metadata are encrypted, and
# read and write access are checked against the permissions.
# Permissions (default DENY): a vehicle publishes only its own rt/<v>/* topics
# (plus /diagnostics, /rosout, /parameter_events and the ROS graph topic) and
# reads its own topics, the members' odometry (V2V: its advisory_follower follows
# its predecessor), /clock, the common grid and the twin's outputs; the edge
# reads every vehicle's topics and publishes the common grid, the twin's topics
# and the advisories. ROS topic /x/y is DDS topic rt/x/y; services are rq/.. and rr/...
#
# Environment: DOMAINS_MAX (default 232) bounds the domain ids granted;
# VALID_DAYS (default 3650) the certificates' validity.
set -euo pipefail
set -f  # no globbing: topic patterns like rt/v1/* are literal

if [[ $# -lt 1 || "$1" == -h || "$1" == --help ]]; then
  sed -n '2,31p' "$0"
  exit 2
fi
command -v openssl >/dev/null || { echo "make_keystore.sh: openssl not found (apt-get install openssl)" >&2; exit 3; }

KS=$1
shift
VEHICLES=("$@")
[[ ${#VEHICLES[@]} -gt 0 ]] || VEHICLES=(v1 v2 v3 v4)
for v in "${VEHICLES[@]}"; do
  [[ "$v" =~ ^[A-Za-z][A-Za-z0-9_]*$ ]] || { echo "make_keystore.sh: bad vehicle id '$v'" >&2; exit 2; }
done
DOMAINS_MAX=${DOMAINS_MAX:-232}
VALID_DAYS=${VALID_DAYS:-3650}
PREFIX=cooperative_fusion

mkdir -p "$KS/public" "$KS/private" "$KS/enclaves"
KS=$(cd "$KS" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------- CAs --
cat >"$TMP/ca.ext" <<'EOF'
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
EOF
cat >"$TMP/leaf.ext" <<'EOF'
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyAgreement
EOF

make_ca() {  # name, CN
  local name=$1 cn=$2
  if [[ -s "$KS/private/$name.key.pem" && -s "$KS/public/$name.cert.pem" ]]; then
    return  # keep an existing CA: enclaves added later must chain to it
  fi
  openssl ecparam -name prime256v1 -genkey -noout -out "$KS/private/$name.key.pem" 2>/dev/null
  openssl req -new -x509 -sha256 -days "$VALID_DAYS" -key "$KS/private/$name.key.pem" \
    -subj "/CN=$cn" -extensions v3_ca -config <(printf '[req]\ndistinguished_name=dn\n[dn]\n[v3_ca]\n'; cat "$TMP/ca.ext") \
    -out "$KS/public/$name.cert.pem"
  chmod 600 "$KS/private/$name.key.pem"
}
make_ca identity_ca "cooperative_fusion identity CA"
make_ca permissions_ca "cooperative_fusion permissions CA"

sign() {  # xml file -> .p7s next to it, signed by the permissions CA (S/MIME, as SROS2 does)
  openssl smime -sign -text -in "$1" -out "${1%.xml}.p7s" \
    -signer "$KS/public/permissions_ca.cert.pem" -inkey "$KS/private/permissions_ca.key.pem"
}

# ---------------------------------------------------------- governance --
cat >"$KS/enclaves/governance.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<dds xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
     xsi:noNamespaceSchemaLocation="http://www.omg.org/spec/DDS-SECURITY/20170901/omg_shared_ca_governance.xsd">
  <domain_access_rules>
    <domain_rule>
      <domains><id_range><min>0</min><max>$DOMAINS_MAX</max></id_range></domains>
      <allow_unauthenticated_participants>false</allow_unauthenticated_participants>
      <enable_join_access_control>true</enable_join_access_control>
      <discovery_protection_kind>ENCRYPT</discovery_protection_kind>
      <liveliness_protection_kind>ENCRYPT</liveliness_protection_kind>
      <rtps_protection_kind>SIGN</rtps_protection_kind>
      <topic_access_rules>
        <topic_rule>
          <topic_expression>*</topic_expression>
          <enable_discovery_protection>true</enable_discovery_protection>
          <enable_liveliness_protection>true</enable_liveliness_protection>
          <enable_read_access_control>true</enable_read_access_control>
          <enable_write_access_control>true</enable_write_access_control>
          <metadata_protection_kind>ENCRYPT</metadata_protection_kind>
          <data_protection_kind>ENCRYPT</data_protection_kind>
        </topic_rule>
      </topic_access_rules>
    </domain_rule>
  </domain_access_rules>
</dds>
EOF
sign "$KS/enclaves/governance.xml"

# ------------------------------------------------------------ enclaves --
topics() {  # topic names -> <topic> elements
  local t
  for t in "$@"; do printf '            <topic>%s</topic>\n' "$t"; done
}

# Infrastructure every ROS node uses: the graph topic, logging, parameters.
COMMON_PUB=(ros_discovery_info rt/rosout rt/parameter_events rt/diagnostics)
COMMON_SUB=(ros_discovery_info rt/parameter_events)

make_enclave() {  # name, publish topics (space separated), subscribe topics
  local name=$1 pub=$2 sub=$3
  local dir="$KS/enclaves/$PREFIX/$name" subject="/$PREFIX/$name"
  mkdir -p "$dir"
  openssl ecparam -name prime256v1 -genkey -noout -out "$dir/key.pem" 2>/dev/null
  chmod 600 "$dir/key.pem"
  openssl req -new -sha256 -key "$dir/key.pem" -subj "/CN=${subject//\//\\/}" -out "$TMP/$name.csr"
  openssl x509 -req -sha256 -days "$VALID_DAYS" -in "$TMP/$name.csr" \
    -CA "$KS/public/identity_ca.cert.pem" -CAkey "$KS/private/identity_ca.key.pem" -CAcreateserial \
    -CAserial "$TMP/identity_ca.srl" -extfile "$TMP/leaf.ext" -out "$dir/cert.pem" 2>/dev/null
  cp "$KS/public/identity_ca.cert.pem" "$dir/identity_ca.cert.pem"
  cp "$KS/public/permissions_ca.cert.pem" "$dir/permissions_ca.cert.pem"
  cp "$KS/enclaves/governance.p7s" "$dir/governance.p7s"
  local not_before not_after
  not_before=$(date -u +%Y-%m-%dT%H:%M:%S)
  not_after=$(date -u -d "+$VALID_DAYS days" +%Y-%m-%dT%H:%M:%S)
  cat >"$dir/permissions.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<dds xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
     xsi:noNamespaceSchemaLocation="http://www.omg.org/spec/DDS-SECURITY/20170901/omg_shared_ca_permissions.xsd">
  <permissions>
    <grant name="$subject">
      <subject_name>CN=$subject</subject_name>
      <validity><not_before>$not_before</not_before><not_after>$not_after</not_after></validity>
      <allow_rule>
        <domains><id_range><min>0</min><max>$DOMAINS_MAX</max></id_range></domains>
        <publish>
          <topics>
$(topics $pub)
          </topics>
        </publish>
        <subscribe>
          <topics>
$(topics $sub)
          </topics>
        </subscribe>
      </allow_rule>
      <default>DENY</default>
    </grant>
  </permissions>
</dds>
EOF
  sign "$dir/permissions.xml"
  echo "enclave $subject"
}

for v in "${VEHICLES[@]}"; do
  # own topics (outputs, and the node's parameter services), infrastructure
  make_enclave "$v" \
    "rt/$v/* rq/$v/* rr/$v/* ${COMMON_PUB[*]}" \
    "rt/$v/* rq/$v/* rr/$v/* rt/*/odom rt/clock rt/cooperative/grid rt/twin/* ${COMMON_SUB[*]}"
done
make_enclave edge \
  "rt/cooperative/* rt/twin/* rt/*/twin/advisory rq/* rr/* ${COMMON_PUB[*]}" \
  "rt/*/evidence_grid rt/*/radar/targets rt/*/odom rt/*/time_reference rt/clock rt/cooperative/* rq/* rr/* rt/diagnostics ${COMMON_SUB[*]}"
make_enclave sim \
  "rt/clock rt/*/lidar/points rt/*/radar/points rt/*/camera/depth/* rt/*/odom rt/*/time_reference ${COMMON_PUB[*]}" \
  "${COMMON_SUB[*]}"
echo "keystore $KS"
