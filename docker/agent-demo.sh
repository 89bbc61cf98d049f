#!/bin/sh
# Demo agent for docker-compose: signs in as the admin, provisions one device through
# the REST API (device + MQTT credentials) and runs it with the simulated driver.
set -eu
TOKEN=$(node -e '
  fetch(process.env.API_URL + "/v1/authentication/user", {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: process.env.ADMIN_USERNAME, password: process.env.ADMIN_PASSWORD }),
  }).then(async (r) => { if (!r.ok) throw new Error("login failed: " + r.status); console.log((await r.json()).tokenId); })
    .catch((e) => { console.error(e.message); process.exit(1); });
')
exec node dist/apps/vpn-agent/src/main.js simulate \
  --broker "$MQTT_URL" --account "$ACCOUNT" --count 1 \
  --api "$API_URL" --token "$TOKEN" --client-id-prefix demo-gw- --connect-delay-ms 500
