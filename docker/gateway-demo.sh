#!/bin/sh
# Demo gateway for docker-compose: signs in as the admin, registers the gateway (once; its name is
# its MQTT client id), issues fresh MQTT credentials and runs the real vpn-gateway process. The
# container needs NET_ADMIN, /dev/net/tun and forwarding (see docker-compose.yml).
set -eu
node -e '
  const api = process.env.API_URL;
  const call = async (path, init = {}, token) => {
    const r = await fetch(api + path, { ...init, headers: { "content-type": "application/json", ...(token ? { authorization: "Bearer " + token } : {}) } });
    if (!r.ok) throw new Error(path + ": " + r.status + " " + (await r.text()));
    return r.json();
  };
  (async () => {
    const { tokenId } = await call("/v1/authentication/user", { method: "POST", body: JSON.stringify({ username: process.env.ADMIN_USERNAME, password: process.env.ADMIN_PASSWORD }) });
    const found = await call("/v1/_/gateways?name=" + process.env.GATEWAY_NAME, {}, tokenId);
    const gw = found.items[0] ?? (await call("/v1/_/gateways", { method: "POST", body: JSON.stringify({ name: process.env.GATEWAY_NAME, endpoint: process.env.GATEWAY_ENDPOINT }) }, tokenId));
    const creds = await call("/v1/_/gateways/" + gw.id + "/credentials", { method: "POST" }, tokenId);
    require("fs").writeFileSync("/tmp/gateway.env", "ACCOUNT=" + creds.account + "\nVPN_GATEWAY_USERNAME=" + creds.username + "\nVPN_GATEWAY_PASSWORD=" + creds.password + "\n", { mode: 0o600 });
  })().catch((e) => { console.error(e.message); process.exit(1); });
'
set -a
. /tmp/gateway.env
set +a
rm -f /tmp/gateway.env
exec node dist/apps/vpn-gateway/src/main.js \
  --broker "$MQTT_URL" --account "$ACCOUNT" --client-id "$GATEWAY_NAME" \
  --listen-port 51820 --interface vpngw0 --state-dir /var/lib/vpn-gateway
