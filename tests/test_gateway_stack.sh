#!/bin/sh
# test_gateway_stack.sh — the gateway against a real gpux-matcher, over real
# sockets: every endpoint of api.md, every error code, auth and roles,
# cross-account isolation, idempotency, rate limiting, HTTPS (handshake,
# TLS 1.2 floor, a request), SSE delivery of a trade, /metrics format, key
# durability (a second gateway loads the keys from the matcher), and
# matcher death (SIGKILL) -> 503 unavailable, then SIGTERM -> exit 0.
#
# The processes are started here, in a temp dir, on private ipc endpoints
# and ephemeral ports; the HTTP client is Python's standard library (no
# third-party code) so the test speaks plain HTTP/1.1 with keep-alive.
# Prints TAP. Needs: GPUX_BIN (the flavour's binaries), openssl, python3.
set -u
BIN=${GPUX_BIN:-$(pwd)/build/rel/bin}
T=$(mktemp -d /tmp/gpux-gwtest.XXXXXX)
MPID= ; GPID= ; G2PID=
cleanup() {
    for p in $GPID $G2PID $MPID; do kill -TERM "$p" 2>/dev/null; done
    sleep 0.2
    for p in $GPID $G2PID $MPID; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT INT TERM

fail_setup() { echo "1..1"; echo "not ok 1 - setup: $1"; for f in "$T"/*.log; do [ -f "$f" ] && sed "s|^|# $(basename "$f"): |" "$f"; done; exit 1; }

# A self-signed certificate for the HTTPS listener.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" \
    -days 2 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" >/dev/null 2>&1 \
    || fail_setup "openssl could not make a test certificate"

ADMIN_KEY=gpx_$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
LIMITS="--max-accounts 1000 --max-orders 10000 --max-orders-per-market 10000 --max-segments 40000
 --history-orders 1000 --fills 1024 --max-keys 1000 --feed-events 4096 --contexts 64"
# shellcheck disable=SC2086
"$BIN/gpux-matcher" --data "$T/m" --cmd "ipc://$T/cmd" --pub "ipc://$T/pub" --feed "ipc://$T/feed" \
    $LIMITS >"$T/matcher.log" 2>&1 &
MPID=$!

start_gateway() { # name extra-args...
    name=$1; shift
    GPUX_ADMIN_KEY=$ADMIN_KEY "$BIN/gpux-gateway" --http-port 0 --matcher-cmd "ipc://$T/cmd" \
        --matcher-pub "ipc://$T/pub" --matcher-timeout-ms 4000 --startup-wait-s 60 \
        --ready-file "$T/$name.ready" "$@" >"$T/$name.log" 2>&1 &
}
start_gateway gw --https-port 0 --tls-cert "$T/cert.pem" --tls-key "$T/key.pem" --rate 0
GPID=$!
for i in $(seq 1 600); do [ -f "$T/gw.ready" ] && break; sleep 0.1; done
[ -f "$T/gw.ready" ] || fail_setup "gateway did not become ready"
URL=$(sed -n 's/^GATEWAY_URL=//p' "$T/gw.ready")
TLS_URL=$(sed -n 's/^GATEWAY_TLS_URL=//p' "$T/gw.ready")

MATCHER_ARGS="--data $T/m --cmd ipc://$T/cmd --pub ipc://$T/pub --feed ipc://$T/feed $(echo $LIMITS)"
export URL TLS_URL ADMIN_KEY MPID GPID T BIN MATCHER_ARGS
python3 - <<'PYEOF'
import warnings
warnings.filterwarnings("ignore", category=DeprecationWarning)
import http.client, json, os, re, socket, ssl, subprocess, sys, time, datetime, signal

URL, TLS_URL = os.environ["URL"], os.environ["TLS_URL"]
ADMIN = os.environ["ADMIN_KEY"]
T = os.environ["T"]
n = 0
failed = 0

def ok(cond, name, detail=""):
    global n, failed
    n += 1
    if cond:
        print(f"ok {n} - {name}")
    else:
        failed += 1
        print(f"not ok {n} - {name}")
        if detail:
            for line in str(detail).splitlines()[:20]:
                print(f"# {line}")
    sys.stdout.flush()
    return cond

def hostport(u):
    m = re.match(r"https?://([^:/]+):(\d+)", u)
    return m.group(1), int(m.group(2))

class Client:
    """One keep-alive connection (reconnects if the server closed it)."""
    def __init__(self, url, key=None, tls_ctx=None):
        self.host, self.port = hostport(url)
        self.key, self.tls_ctx, self.conn = key, tls_ctx, None
    def _conn(self):
        if self.conn is None:
            if self.tls_ctx:
                self.conn = http.client.HTTPSConnection(self.host, self.port, timeout=20, context=self.tls_ctx)
            else:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=20)
        return self.conn
    def req(self, method, path, body=None, key="default", headers=None, raw=None):
        h = dict(headers or {})
        k = self.key if key == "default" else key
        if k:
            h["Authorization"] = f"Bearer {k}"
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        if data is not None:
            h["Content-Type"] = "application/json"
        for attempt in range(2):
            try:
                c = self._conn()
                c.request(method, path, body=data, headers=h)
                r = c.getresponse()
                text = r.read().decode()
                try:
                    js = json.loads(text) if text else None
                except ValueError:
                    js = None
                return r.status, js, text, r
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn = None
        raise RuntimeError("connection failed twice")

def err_code(js):
    try:
        return js["error"]["code"]
    except Exception:
        return None

def is_error(status, js, code, want_status):
    return status == want_status and err_code(js) == code and isinstance(js["error"].get("message"), str) and js["error"]["message"] != ""

# Hours: a window a few days ahead (the matcher runs on the wall clock).
now = datetime.datetime.now(datetime.timezone.utc).replace(minute=0, second=0, microsecond=0)
def hour(days, hours=0):
    return (now + datetime.timedelta(days=days, hours=hours)).strftime("%Y-%m-%dT%H:00:00Z")
S, E = hour(3), hour(4)           # offers cover [S, E)
BS, BE = hour(3), hour(3, 10)      # bids inside it

pub = Client(URL)
admin = Client(URL, ADMIN)

# ---- health, markets -----------------------------------------------------------
st, js, _, _ = pub.req("GET", "/healthz")
ok(st == 200 and js["status"] == "ok" and js["matcher"] == "up" and js["ledger"] in ("up", "down")
   and isinstance(js["ledger_lag"], int), "healthz answers with matcher/ledger state", js)
st, js, _, _ = pub.req("GET", "/v1/markets")
m = [x for x in js["markets"] if x["gpu"] == "H100" and x["region"] == "us-east"] if st == 200 else []
ok(st == 200 and len(m) == 1 and m[0]["lot"] == 8 and m[0]["tick"] == "0.0001", "GET /v1/markets lists H100/us-east with lot and tick as a decimal string", js)

# ---- admin: accounts and keys ---------------------------------------------------
def create(name, roles):
    st, js, _, _ = admin.req("POST", "/v1/admin/accounts", {"name": name, "roles": roles})
    return st, js
st, b1 = create("buyer-one", ["buyer"])
ok(st == 201 and re.fullmatch(r"gpx_[0-9a-f]{64}", b1.get("api_key", "")) and b1["roles"] == ["buyer"]
   and b1["name"] == "buyer-one" and b1["account_id"].isdigit(), "admin creates an account and its key is shown once", b1)
st, p1 = create("provider-one", ["provider"])
st2, b2 = create("buyer-two", ["buyer"])
st3, both = create("both-one", ["buyer", "provider"])
ok(st == 201 and st2 == 201 and st3 == 201, "more accounts created")
st, js = create("buyer-one", ["buyer"])
ok(is_error(st, js, "conflict", 409), "a taken account name is 409 conflict", js)
st, js = create("x", ["king"])
ok(is_error(st, js, "bad_field", 400) and "roles" in js["error"]["message"], "unknown role is 400 bad_field naming roles", js)
B1, P1, B2, BOTH = (Client(URL, a["api_key"]) for a in (b1, p1, b2, both))

st, js, _, _ = admin.req("GET", "/v1/admin/accounts")
names = {a["name"]: a for a in js["accounts"]} if st == 200 else {}
ok(st == 200 and "exchange" in names and names["exchange"]["account_id"] == "0" and "buyer-one" in names
   and all(set(a) >= {"account_id", "name", "roles", "balance", "held", "available"} for a in js["accounts"]),
   "admin lists every account, the fee account included", js)

# ---- auth ------------------------------------------------------------------------
st, js, _, _ = pub.req("GET", "/v1/account")
ok(is_error(st, js, "unauthenticated", 401), "no key: 401 unauthenticated", js)
st, js, _, _ = pub.req("GET", "/v1/account", key="gpx_" + "0" * 64)
ok(is_error(st, js, "unauthenticated", 401), "unknown key: 401", js)
st, js, _, _ = pub.req("GET", "/v1/account", headers={"Authorization": "Basic abc"}, key=None)
ok(is_error(st, js, "unauthenticated", 401), "malformed Authorization: 401", js)
st, js, _, _ = B1.req("GET", "/v1/admin/accounts")
ok(is_error(st, js, "forbidden", 403), "non-admin on an admin route: 403 forbidden", js)

# ---- money ------------------------------------------------------------------------
st, js, _, _ = admin.req("POST", "/v1/admin/deposits", {"account_id": b1["account_id"], "amount": "100000"})
ok(st == 200 and js["balance"] == "100000.00" and js["available"] == "100000.00" and js["account_id"] == b1["account_id"],
   "deposit answers with the account", js)
admin.req("POST", "/v1/admin/deposits", {"account_id": b2["account_id"], "amount": "50000.5"})
admin.req("POST", "/v1/admin/deposits", {"account_id": both["account_id"], "amount": "1000"})
st, js, _, _ = admin.req("POST", "/v1/admin/deposits", {"account_id": b1["account_id"], "amount": 5})
ok(is_error(st, js, "bad_field", 400), "a JSON number as amount is rejected", js)
st, js, _, _ = admin.req("POST", "/v1/admin/deposits", {"account_id": "999", "amount": "1"})
ok(is_error(st, js, "not_found", 404), "deposit to an unknown account: 404", js)
st, js, _, _ = admin.req("POST", "/v1/admin/withdrawals", {"account_id": b1["account_id"], "amount": "100000.000001"})
ok(is_error(st, js, "insufficient_funds", 422), "withdrawal over the available balance: 422 insufficient_funds", js)
st, js, _, _ = admin.req("POST", "/v1/admin/withdrawals", {"account_id": b1["account_id"], "amount": "0.5"})
ok(st == 200 and js["balance"] == "99999.50", "withdrawal answers with the account", js)
st, acct, _, _ = B1.req("GET", "/v1/account")
ok(st == 200 and acct["account_id"] == b1["account_id"] and acct["name"] == "buyer-one" and acct["roles"] == ["buyer"]
   and acct["balance"] == "99999.50" and acct["held"] == "0.00" and acct["available"] == "99999.50",
   "GET /v1/account shows own balance, held, available as decimal strings", acct)

# ---- validation: every 400 code, nothing changes ---------------------------------------
def order(side, qty=8, price="2.00", start=BS, end=BE, **kw):
    o = {"side": side, "gpu": "H100", "region": "us-east", "start": start, "end": end, "qty": qty, "price": price}
    o.update(kw)
    return o

bad = [
    ("bad_json", 400, dict(raw="{\"side\":")),
    ("bad_json", 400, dict(raw="[1,2]")),
    ("missing_field", 400, dict(body={k: v for k, v in order("buy").items() if k != "qty"})),
    ("bad_field", 400, dict(body=order("buy", colour="red"))),
    ("bad_field", 400, dict(body=order("hold"))),
    ("bad_field", 400, dict(body=order("buy", tif="day"))),
    ("bad_window", 400, dict(body=order("buy", start=BE, end=BS))),
    ("bad_window", 400, dict(body=order("buy", start=BS[:14] + "30:00Z"))),
    ("bad_window", 400, dict(body=order("buy", start=hour(3), end=hour(3 + 400)))),
    ("bad_price", 400, dict(body=order("buy", price=2.35))),
    ("bad_price", 400, dict(body=order("buy", price="1e3"))),
    ("bad_price", 400, dict(body=order("buy", price="2.3500001"))),
    ("bad_price", 400, dict(body=order("buy", price="-2"))),
    ("bad_price", 400, dict(body=order("buy", price="2.00001"))),     # not a tick multiple
    ("bad_price", 400, dict(body=order("buy", price="1000.0001"))),
    ("bad_qty", 400, dict(body=order("buy", qty=7))),                  # not a lot multiple
    ("bad_qty", 400, dict(body=order("buy", qty="8"))),
    ("bad_qty", 400, dict(body=order("buy", qty=0))),
    ("unknown_market", 400, dict(body=dict(order("buy"), gpu="Z999"))),
    ("window_in_past", 422, dict(body=order("buy", start=hour(-2), end=hour(-1)))),
    ("insufficient_funds", 422, dict(body=order("buy", qty=800, price="900"))),
]
for code, status, kw in bad:
    st, js, text, _ = B1.req("POST", "/v1/orders", **kw)
    ok(is_error(st, js, code, status), f"POST /v1/orders -> {status} {code} ({str(kw)[:60]})", text)
st, js, _, _ = B1.req("POST", "/v1/orders", body=order("buy", colour="red"))
ok("colour" in js["error"]["message"], "bad_field message names the field", js)
st, js, _, _ = B1.req("POST", "/v1/orders", raw="{" + " " * 70000 + "}")
ok(is_error(st, js, "too_large", 413), "a body over 64 KiB: 413 too_large", js)
st, js, _, _ = B1.req("POST", "/v1/orders", body=order("sell"))
ok(is_error(st, js, "forbidden", 403), "a buyer cannot sell: 403", js)
st, js, _, _ = P1.req("POST", "/v1/orders", body=order("buy"))
ok(is_error(st, js, "forbidden", 403), "a provider cannot buy: 403", js)
st, after, _, _ = B1.req("GET", "/v1/account")
st2, opens, _, _ = B1.req("GET", "/v1/orders")
ok(after == acct and opens == {"orders": []}, "rejected requests changed nothing (balance, holds, orders)", (after, opens))

# ---- orders: create, fill, idempotency ------------------------------------------------
st, offer, _, _ = P1.req("POST", "/v1/orders", order("sell", qty=16, price="2.00", start=S, end=E, min_hours=1))
ok(st == 201 and offer["status"] == "open" and offer["side"] == "sell" and offer["qty"] == 16 and offer["price"] == "2.00"
   and offer["filled_qty"] == 0 and offer["fills"] == [] and offer["start"] == S and offer["order_id"].isdigit(),
   "provider posts an offer: 201 open", offer)
st, js, _, _ = P1.req("POST", "/v1/orders", order("sell", qty=8, price="1.00", start=S, end=E, tif="fok"))
ok(st == 400 and err_code(js) == "bad_field", "fok on an offer is rejected", js)
st, bid, _, _ = B1.req("POST", "/v1/orders", order("buy", qty=8, price="2.50", client_order_id="b1-first"))
ok(st == 201 and bid["status"] == "filled" and bid["filled_qty"] == 8 and len(bid["fills"]) == 1
   and bid["fills"][0]["price"] == "2.00" and bid["fills"][0]["qty"] == 8 and bid["client_order_id"] == "b1-first",
   "a crossing bid fills at the resting offer's price: 201 filled with its fill", bid)
st, again, _, _ = B1.req("POST", "/v1/orders", order("buy", qty=8, price="2.50", client_order_id="b1-first"))
ok(st == 200 and again["order_id"] == bid["order_id"] and again["status"] == "filled", "repeated client_order_id: 200 with the first order", again)
# The same client_order_id from 8 connections at once: one order, 1 x 201 and 7 x 200.
import threading
results = []
def same_id():
    c = Client(URL, b2["api_key"])
    st_, js_, _, _ = c.req("POST", "/v1/orders", order("buy", qty=8, price="0.50", client_order_id="race-1"))
    results.append((st_, js_.get("order_id") if js_ else None))
ths = [threading.Thread(target=same_id) for _ in range(8)]
for t_ in ths: t_.start()
for t_ in ths: t_.join(30)
ok(sorted(r[0] for r in results) == [200] * 7 + [201] and len({r[1] for r in results}) == 1,
   "8 concurrent submissions of one client_order_id make exactly one order", results)
B2.req("DELETE", f"/v1/orders/{results[0][1]}")
st, lease_list, _, _ = B1.req("GET", "/v1/leases")
ok(st == 200 and len(lease_list["leases"]) == 1, "idempotent retry created no second trade", lease_list)
st, js, _, _ = B2.req("POST", "/v1/orders", order("buy", qty=8, price="2.50", client_order_id="b1-first"))
ok(st == 201 and js["order_id"] != bid["order_id"], "client_order_id is per account", js)
b2_order = js
st, js, _, _ = B2.req("POST", "/v1/orders", order("buy", qty=8, price="1.00", tif="post_only"))
ok(st == 201 and js["status"] == "open", "post_only that does not cross rests", js)
b2_rest = js
st, js, _, _ = BOTH.req("POST", "/v1/orders", order("sell", qty=8, price="0.50", start=S, end=E, tif="post_only"))
ok(is_error(st, js, "would_match", 422), "post_only that would trade: 422 would_match", js)

# ---- get / list / isolation ------------------------------------------------------------------
st, js, _, _ = B1.req("GET", f"/v1/orders/{bid['order_id']}")
ok(st == 200 and js["order_id"] == bid["order_id"] and js["fills"] == bid["fills"], "GET own order", js)
st, js, _, _ = B2.req("GET", f"/v1/orders/{bid['order_id']}")
ok(is_error(st, js, "not_found", 404), "another account's order: 404", js)
st, js, _, _ = B1.req("GET", "/v1/orders/99999")
ok(is_error(st, js, "not_found", 404), "unknown order: 404", js)
st, js, _, _ = B1.req("GET", "/v1/orders/abc")
ok(is_error(st, js, "not_found", 404), "malformed order id: 404", js)
st, js, _, _ = B2.req("GET", "/v1/orders?status=open")
ids = [o["order_id"] for o in js["orders"]] if st == 200 else []
ok(st == 200 and ids == [b2_rest["order_id"]], "list shows only the account's own open orders", js)
st, js, _, _ = P1.req("GET", "/v1/orders")
ok(st == 200 and [o["order_id"] for o in js["orders"]] == [offer["order_id"]], "provider lists its open offer", js)

# ---- replace / cancel ---------------------------------------------------------------------------
st, js, _, _ = B1.req("PATCH", f"/v1/orders/{b2_rest['order_id']}", {"price": "1.10"})
ok(is_error(st, js, "not_found", 404), "replace of another account's order: 404", js)
st, js, _, _ = B2.req("PATCH", f"/v1/orders/{b2_rest['order_id']}", {"price": 1.1})
ok(is_error(st, js, "bad_price", 400), "replace with a JSON number price: 400 bad_price", js)
st, js, _, _ = B2.req("PATCH", f"/v1/orders/{b2_rest['order_id']}", {})
ok(is_error(st, js, "missing_field", 400), "replace with nothing to change: 400 missing_field", js)
st, js, _, _ = B2.req("PATCH", f"/v1/orders/{b2_rest['order_id']}", {"price": "1.10", "qty": 16})
ok(st == 200 and js["price"] == "1.10" and js["qty"] == 16 and js["status"] == "open", "replace: 200 with the new price and qty", js)
st, js, _, _ = B1.req("DELETE", f"/v1/orders/{b2_rest['order_id']}")
ok(is_error(st, js, "not_found", 404), "cancel of another account's order: 404", js)
st, js, _, _ = B2.req("DELETE", f"/v1/orders/{b2_rest['order_id']}")
ok(st == 200 and js["status"] == "cancelled", "cancel: 200 cancelled", js)
st, js, _, _ = B2.req("DELETE", f"/v1/orders/{b2_rest['order_id']}")
ok(is_error(st, js, "conflict", 409), "cancel again: 409 conflict", js)
st, js, _, _ = B1.req("DELETE", f"/v1/orders/{bid['order_id']}")
ok(is_error(st, js, "conflict", 409), "cancel of a filled order: 409 conflict", js)
st, js, _, _ = B1.req("PUT", f"/v1/orders/{bid['order_id']}", {})
ok(st == 405 and err_code(js) == "method_not_allowed", "wrong method: 405", js)
st, js, _, _ = pub.req("GET", "/v1/nothing")
ok(is_error(st, js, "not_found", 404), "unknown path: 404 not_found", js)

# ---- leases, account after trade, market data ------------------------------------------------------
st, js, _, _ = P1.req("GET", "/v1/leases")
ls = js["leases"] if st == 200 else []
ok(st == 200 and len(ls) == 2 and all(l["role"] == "provider" and l["gpu"] == "H100" and l["price"] == "2.00" for l in ls),
   "provider sees its leases with role provider", js)
st, js, _, _ = B1.req("GET", "/v1/leases")
l = js["leases"][0] if st == 200 and js["leases"] else {}
ok(l.get("role") == "buyer" and l.get("trade_id") == bid["fills"][0]["trade_id"] and l.get("start") == BS and l.get("qty") == 8,
   "buyer sees its lease", js)
st, js, _, _ = B1.req("GET", "/v1/account")
# 8 GPUs x 10 h x $2.00 = $160 + 10 bps taker fee $0.16
ok(st == 200 and js["balance"] == "99839.34" and js["held"] == "0.00", "buyer paid notional + taker fee exactly", js)
st, js, _, _ = pub.req("GET", "/v1/markets/H100/us-east/book?depth=5")
ok(st == 200 and len(js["asks"]) == 1 and js["asks"][0]["price"] == "2.00" and js["bids"] == []
   and set(js["asks"][0]) == {"price", "qty", "start", "end"}, "public book: anonymous entries", js)
st, js, _, _ = pub.req("GET", f"/v1/markets/H100/us-east/book?start={BS}&end={BE}")
st2, js2, _, _ = pub.req("GET", f"/v1/markets/H100/us-east/book?start={hour(3, 10)}&end={hour(3, 20)}")
ok(st == 200 and js["asks"] == [] and st2 == 200 and js2["asks"] and js2["asks"][0]["qty"] == 16,
   "book for a window: only orders that could trade it, with the capacity left in it", (js, js2))
st, js, _, _ = pub.req("GET", "/v1/markets/H100/us-east/book?depth=zero")
ok(is_error(st, js, "bad_field", 400), "bad depth: 400 bad_field", js)
st, js, _, _ = pub.req("GET", "/v1/markets/H100/mars/book")
ok(is_error(st, js, "unknown_market", 400), "book of an unknown market: 400 unknown_market", js)
st, js, _, _ = pub.req("GET", "/v1/markets/H100/us-east/trades?limit=10")
tr = js["trades"] if st == 200 else []
ok(st == 200 and len(tr) == 2 and int(tr[0]["trade_id"]) > int(tr[1]["trade_id"])
   and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", tr[0]["time"]), "public trades, newest first, with time", js)
q = f"/v1/quote?side=buy&gpu=H100&region=us-east&start={hour(3, 10)}&end={hour(3, 20)}&qty=8"
st, js, _, _ = B1.req("GET", q)
ok(st == 200 and js["fillable_qty"] == 8 and js["avg_price"] == "2.00" and js["notional"] == "160.00", "quote: what an ioc would fill", js)
st, js, _, _ = pub.req("GET", q)
ok(is_error(st, js, "unauthenticated", 401), "quote needs a key", js)
st, js, _, _ = B1.req("GET", "/v1/quote?side=buy&gpu=H100&region=us-east")
ok(is_error(st, js, "missing_field", 400), "quote without a window: 400 missing_field", js)

# ---- key durability and rate limit (a second gateway, started now) --------------------------------------
# It knows only what the matcher journaled: the keys created above must work.
ready2 = os.path.join(T, "gw2.ready")
log2 = open(os.path.join(T, "gw2.log"), "w")
g2p = subprocess.Popen([os.path.join(os.environ["BIN"], "gpux-gateway"), "--http-port", "0",
                        "--matcher-cmd", f"ipc://{T}/cmd", "--matcher-pub", f"ipc://{T}/pub",
                        "--rate", "1", "--burst", "2", "--idle-timeout-s", "1", "--ledger-stall-s", "1",
                        "--ready-file", ready2],
                       stdout=log2, stderr=log2, env={k: v for k, v in os.environ.items() if k != "GPUX_ADMIN_KEY"})
for _ in range(600):
    if os.path.exists(ready2):
        break
    time.sleep(0.1)
URL2 = open(ready2).read().split("GATEWAY_URL=")[1].split()[0] if os.path.exists(ready2) else "http://127.0.0.1:1"
g2 = Client(URL2, b2["api_key"])
codes = [g2.req("GET", "/v1/account") for _ in range(4)]
# Idle/header timeout: a client that never finishes its headers is cut off.
h2, p2 = hostport(URL2)
slow = socket.create_connection((h2, p2), timeout=30)
slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
try:
    closed = slow.recv(4096) == b""
except (ConnectionResetError, socket.timeout):
    closed = True
ok(closed, "a connection that stalls in its headers is closed by the header/idle timeout")
slow.close()
# A stream outlives the idle timeout (streams have none) and still delivers.
sse2 = socket.create_connection((h2, p2), timeout=30)
sse2.sendall(b"GET /v1/stream HTTP/1.1\r\nHost: x\r\n\r\n")
sse2.recv(4096)
time.sleep(2.5)
big = Client(URL2, key=None)
st, js, _, _ = big.req("GET", "/v1/account", headers={"Authorization": "Bearer gpx_" + "1" * 64}, key=None)
ok(is_error(st, js, "unauthenticated", 401), "second gateway: unknown key 401")
st, tr2, _, _ = B1.req("POST", "/v1/orders", order("buy", qty=8, price="2.00", start=hour(3, 14), end=hour(3, 15)))
buf = b""
try:
    while b"event: trade" not in buf:
        chunk = sse2.recv(65536)
        if not chunk:
            break
        buf += chunk
except socket.timeout:
    pass
ok(st == 201 and b"event: trade" in buf, "a stream idle longer than the idle timeout still gets the trade", buf[-300:])
sse2.close()
big_hdr = socket.create_connection((h2, p2), timeout=30)
big_hdr.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
try:
    resp = big_hdr.recv(4096)
except (ConnectionResetError, socket.timeout):
    resp = b""
ok(not resp.startswith(b"HTTP/1.1 200"), "headers over 16 KiB are refused", resp[:100])
big_hdr.close()
# No ledger runs in this test: the journal moves, nobody reads the feed, so
# once the stall window (1 s here) has passed /healthz must say so.
h_st, h_js = 0, None
for _ in range(50):
    h_st, h_js, _, _ = big.req("GET", "/healthz")
    if h_st == 503:
        break
    time.sleep(0.2)
ok(h_st == 503 and h_js["matcher"] == "up" and h_js["ledger"] == "down" and h_js["ledger_lag"] > 0,
   "no ledger consuming the feed: /healthz 503, matcher up, ledger down, lag > 0", h_js)
g2p.send_signal(signal.SIGTERM)
ok(g2p.wait(timeout=30) == 0, "second gateway exits 0 on SIGTERM")
ok(codes[0][0] == 200 and codes[0][1]["name"] == "buyer-two", "a second gateway knows keys created through the first (journaled hashes)", codes[0][1])
limited = [c for c in codes if c[0] == 429]
ok(limited and err_code(limited[0][1]) == "rate_limited" and int(limited[0][3].getheader("Retry-After", "0")) >= 1,
   "over the per-key rate: 429 rate_limited with Retry-After", [c[0] for c in codes])

# ---- HTTPS ----------------------------------------------------------------------------------------
ctx = ssl.create_default_context(cafile=os.path.join(T, "cert.pem"))
th, tp = hostport(TLS_URL)
try:
    with socket.create_connection((th, tp), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            ver = s.version()
    ok(ver in ("TLSv1.2", "TLSv1.3"), f"TLS handshake ({ver})")
except Exception as e:
    ok(False, "TLS handshake", e)
old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
old.check_hostname = False
old.verify_mode = ssl.CERT_NONE
try:
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("ALL:@SECLEVEL=0")
    with socket.create_connection((th, tp), timeout=10) as raw:
        with old.wrap_socket(raw) as s:
            refused = False
except (ssl.SSLError, OSError, ValueError):
    refused = True
ok(refused, "TLS 1.1 is refused")
tc = Client(TLS_URL, b1["api_key"], tls_ctx=ctx)
st, js, _, _ = tc.req("GET", "/v1/account")
st2, js2, _, _ = tc.req("GET", "/v1/orders")  # same connection: keep-alive over TLS
ok(st == 200 and js["name"] == "buyer-one" and st2 == 200, "authenticated requests over HTTPS (keep-alive)", js)
# A reply of up to 16 KiB leaves as one TLS record (headers and body joined
# into one buffer chunk, gateway/http.c): replies of each kind must still
# arrive whole and in order on one keep-alive connection.
st3, o3, _, _ = tc.req("POST", "/v1/orders", body=order("buy", price="0.01", tif="ioc"))
st4, e4, _, _ = tc.req("GET", "/v1/orders/999999999")
st5, _, mtext, _ = tc.req("GET", "/metrics")
_, _, plain_metrics, _ = Client(URL).req("GET", "/metrics", key=None)
ok(st3 == 201 and o3["side"] == "buy" and o3["qty"] == 8 and o3["price"] == "0.01"
   and o3["tif"] == "ioc" and is_error(st4, e4, "not_found", 404)
   and st5 == 200 and "gpux_gateway_requests_total" in mtext
   and len(mtext) > len(plain_metrics) // 2,
   f"order, error and /metrics ({len(mtext)} bytes) over HTTPS arrive whole", (o3, e4))

# ---- SSE -----------------------------------------------------------------------------------------------
def open_stream(key=None):
    h, p = hostport(URL)
    s = socket.create_connection((h, p), timeout=20)
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    s.sendall(f"GET /v1/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n{auth}\r\n".encode())
    return s

def read_events(s, want, limit_bytes=200000):
    """Reads until every event name in want was seen (or the socket times out)."""
    buf, seen = b"", {}
    try:
        while len(buf) < limit_bytes and not all(w in seen for w in want):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            for m in re.finditer(rb"event: (\w+)\r?\ndata: (.*?)\r?\n", buf):
                seen.setdefault(m.group(1).decode(), []).append(m.group(2).decode())
    except socket.timeout:
        pass
    return buf, seen

s_b1 = open_stream(b1["api_key"])
s_anon = open_stream()
head, _ = read_events(s_b1, [])  # nothing yet; just make sure it started
s_b1.settimeout(20); s_anon.settimeout(20)
first = s_b1.recv(4096)
ok(b"200 OK" in first and b"text/event-stream" in first, "stream answers 200 text/event-stream", first[:200])
s_anon.recv(4096)
st, bid2, _, _ = B1.req("POST", "/v1/orders", order("buy", qty=8, price="2.00", start=hour(3, 12), end=hour(3, 14)))
ok(st == 201 and bid2["status"] == "filled", "a trade for the stream", bid2)
buf, seen = read_events(s_b1, ["trade", "order"])
trades = [json.loads(d) for d in seen.get("trade", [])]
ok(any(t["trade_id"] == bid2["fills"][0]["trade_id"] and t["price"] == "2.00" and t["gpu"] == "H100" for t in trades),
   "SSE delivers the trade event", buf[-600:])
orders_ev = [json.loads(d) for d in seen.get("order", [])]
ok(any(o.get("order_id") == bid2["order_id"] for o in orders_ev), "SSE delivers order events for the key's account", seen.get("order"))
buf, seen = read_events(s_anon, ["trade"])
ok("trade" in seen and "order" not in seen, "anonymous stream: trades, no order events", seen.keys())
s_b1.close(); s_anon.close()

# ---- metrics ---------------------------------------------------------------------------------------------
st, _, text, resp = pub.req("GET", "/metrics")
lines = [l for l in text.splitlines() if l and not l.startswith("#")]
good = all(re.fullmatch(r'[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.]+', l) for l in lines)
vals = {l.rsplit(" ", 1)[0]: float(l.rsplit(" ", 1)[1]) for l in lines}
buckets = [v for k, v in vals.items() if k.startswith("gpux_gateway_request_duration_seconds_bucket")]
ok(st == 200 and resp.getheader("Content-Type", "").startswith("text/plain") and good, "metrics are Prometheus text", text[:300])
ok(vals.get('gpux_gateway_requests_total{route="order_create",status="201"}', 0) >= 4
   and vals.get('gpux_gateway_requests_total{route="order_create",status="400"}', 0) >= 15
   and buckets == sorted(buckets) and buckets[-1] == vals.get("gpux_gateway_request_duration_seconds_count")
   and vals.get("gpux_gateway_trades_total", 0) >= 1 and "gpux_ledger_lag" in vals,
   "metrics count requests by route and status, a cumulative latency histogram, trades, ledger lag", text[:2000])

# ---- batching: concurrent commands share one matcher message ---------------------------------
# Requests that reach the gateway in the same loop turn go to the matcher
# as one batched message (gateway/batch.c). Each must still get its own
# answer: its own order, its own error, idempotency, cancels, replaces.
def metric(name):
    _, _, text_, _ = pub.req("GET", "/metrics")
    for l_ in text_.splitlines():
        if l_.startswith(name + " "):
            return float(l_.split()[1])
    return -1.0

def burst(jobs, url=None):
    """Runs every (client, method, path, body) at once: connections are
    opened first, then all requests are sent together."""
    import threading as th_
    res = [None] * len(jobs)
    gate = th_.Barrier(len(jobs))
    def run(i, cl, method, path, body):
        c_ = Client(url or URL, cl.key)
        c_._conn().connect()
        try:
            gate.wait(10)
        except th_.BrokenBarrierError:
            pass
        try:
            res[i] = c_.req(method, path, body)
        except Exception as e_:
            res[i] = (0, None, str(e_), None)
    ts_ = [th_.Thread(target=run, args=(i,) + j) for i, j in enumerate(jobs)]
    for t_ in ts_: t_.start()
    for t_ in ts_: t_.join(60)
    return res

batched_before = metric("gpux_gateway_batched_commands_total")
keep = B2.req("POST", "/v1/orders", order("buy", qty=8, price="0.45"))[1]
batched_ok, answers_ok, detail = False, True, []
for round_ in range(10):
    rest = [B2.req("POST", "/v1/orders", order("buy", qty=8, price="0.40"))[1] for _ in range(5)]
    jobs = [(B1, "POST", "/v1/orders", order("buy", qty=8, price="0.01", tif="ioc", client_order_id=f"bb{round_}-{k}"))
            for k in range(12)]
    jobs += [(B2, "DELETE", f"/v1/orders/{o['order_id']}", None) for o in rest[:3]]
    jobs += [(B2, "PATCH", f"/v1/orders/{rest[3]['order_id']}", {"price": "0.35", "qty": 16})]
    jobs += [(B1, "POST", "/v1/orders", order("buy", qty=800, price="900"))]
    jobs += [(BOTH, "POST", "/v1/orders", order("sell", qty=8, price="0.30", start=S, end=E, tif="post_only"))]
    jobs += [(B1, "POST", "/v1/orders", order("buy", qty=8, price="0.02", tif="ioc", client_order_id=f"dup{round_}"))] * 2
    jobs += [(B2, "DELETE", f"/v1/orders/{rest[4]['order_id']}", None)] * 2
    cross = round_ == 0
    if cross:
        jobs += [(B2, "POST", "/v1/orders", order("buy", qty=8, price="2.50", start=hour(3, 16), end=hour(3, 18)))]
    res = burst(jobs)
    good = []
    for k in range(12):
        st_, js_ = res[k][0], res[k][1]
        good.append(st_ == 201 and js_["client_order_id"] == f"bb{round_}-{k}" and js_["status"] == "cancelled"
                    and js_["qty"] == 8 and js_["price"] == "0.01" and js_["fills"] == [])
    for k, o in enumerate(rest[:3]):
        st_, js_ = res[12 + k][0], res[12 + k][1]
        good.append(st_ == 200 and js_["order_id"] == o["order_id"] and js_["status"] == "cancelled")
    st_, js_ = res[15][0], res[15][1]
    good.append(st_ == 200 and js_["order_id"] == rest[3]["order_id"] and js_["price"] == "0.35" and js_["qty"] == 16)
    good.append(is_error(res[16][0], res[16][1], "insufficient_funds", 422))
    good.append(is_error(res[17][0], res[17][1], "would_match", 422))
    d1, d2 = res[18], res[19]
    good.append(sorted([d1[0], d2[0]]) == [200, 201] and d1[1]["order_id"] == d2[1]["order_id"]
                and d1[1]["client_order_id"] == f"dup{round_}")
    c1, c2 = sorted([res[20], res[21]], key=lambda r_: r_[0])
    good.append(c1[0] == 200 and c1[1]["status"] == "cancelled" and is_error(c2[0], c2[1], "conflict", 409))
    if cross:
        st_, js_ = res[22][0], res[22][1]
        good.append(st_ == 201 and js_["status"] == "filled" and js_["filled_qty"] == 8 and len(js_["fills"]) == 1
                    and js_["fills"][0]["price"] == "2.00" and js_["fills"][0]["qty"] == 8)
    if not all(good):
        answers_ok = False
        detail.append([(i, r_[0], r_[2][:200]) for i, (g_, r_) in enumerate(zip(good, res)) if not g_][:5])
    B2.req("DELETE", f"/v1/orders/{rest[3]['order_id']}")
    if metric("gpux_gateway_batched_commands_total") > batched_before:
        batched_ok = True
        if round_ >= 1:
            break
B2.req("DELETE", f"/v1/orders/{keep['order_id']}")
ok(batched_ok, "concurrent orders, cancels and replaces went to the matcher in batched messages",
   (batched_before, metric("gpux_gateway_batched_commands_total")))
ok(answers_ok, "in a batch every request gets its own answer: its order, its fill, its error (422s do not "
   "affect the others), one order per client_order_id (201 + 200), cancels (a second cancel: 409) and replaces", detail)
st, js, _, _ = B1.req("GET", "/v1/orders")
ok(st == 200 and js["orders"] == [], "the batched ioc orders left nothing resting", js)
# Market data comes as one message per matcher batch with every command's
# events: batched orders take their own events from it (not the feed), and
# streams still see every trade once, each command's events grouped as
# before (the market's book and trade events, then each account's order
# events).
def metric_src(src):
    _, _, text_, _ = pub.req("GET", "/metrics")
    key_ = f'gpux_gateway_batched_order_events_total{{source="{src}"}} '
    return next((float(l_.split()[1]) for l_ in text_.splitlines() if l_.startswith(key_)), -1.0)
ok(metric_src("market_data") > 0, "batched orders were completed from the coalesced market data",
   (metric_src("market_data"), metric_src("feed"), metric_src("order_query")))

def read_seq(s, until, limit_bytes=400000):
    """Reads (event, data) pairs in order until until(pairs) or a timeout."""
    buf, pairs = b"", []
    try:
        while len(buf) < limit_bytes:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            pairs = [(m.group(1).decode(), json.loads(m.group(2)))
                     for m in re.finditer(rb"event: (\w+)\r?\ndata: (.*?)\r?\n", buf)]
            if until(pairs):
                break
    except socket.timeout:
        pass
    return pairs

S5, E5 = hour(5), hour(6)
st, off5, _, _ = P1.req("POST", "/v1/orders", order("sell", qty=64, price="1.90", start=S5, end=E5))
s_p1, s_an = open_stream(p1["api_key"]), open_stream()
s_p1.settimeout(20); s_an.settimeout(20)
h1_, h2_ = s_p1.recv(4096), s_an.recv(4096)
res = burst([(B2, "POST", "/v1/orders", order("buy", qty=8, price="2.00", start=hour(5, k), end=hour(5, k + 1)))
             for k in range(6)])
tids = sorted(int(r_[1]["fills"][0]["trade_id"]) for r_ in res
              if r_[0] == 201 and r_[1]["status"] == "filled" and len(r_[1]["fills"]) == 1)
ok(st == 201 and len(tids) == 6, "a burst of crossing orders: each filled with its own fill", [r_[:2] for r_ in res])
def fills_of(pairs):
    return [int(d["trade_id"]) for e, d in pairs if e == "order" and d.get("change") == "fill"]
def trades_of(pairs):
    return [int(d["trade_id"]) for e, d in pairs if e == "trade"]
an = read_seq(s_an, lambda p_: len(trades_of(p_)) >= len(tids))
pp = read_seq(s_p1, lambda p_: len(fills_of(p_)) >= len(tids))
ok(tids and sorted(trades_of(an)) == tids and "order" not in [e for e, _ in an],
   "the anonymous stream sees every trade of the burst exactly once, no order events", an[-12:])
pos = {}
for i_, (e, d) in enumerate(pp):
    if e in ("trade", "order") and "trade_id" in d:
        pos.setdefault((e, int(d["trade_id"])), []).append(i_)
grouped = all(len(pos.get(("trade", t_), [])) == 1 and len(pos.get(("order", t_), [])) == 1
              and pos[("trade", t_)][0] < pos[("order", t_)][0] for t_ in tids)
grouped = grouped and all(pos[("order", a_)][0] < pos[("trade", b_)][0] for a_, b_ in zip(tids, tids[1:]))
ok(tids and grouped and all(d["order_id"] == off5["order_id"] for e, d in pp if e == "order" and d.get("change") == "fill"),
   "the provider's stream: per order, the trade then the provider's own fill, orders in trade order", pp[-14:])
s_p1.close(); s_an.close()
P1.req("DELETE", f"/v1/orders/{off5['order_id']}")

# Without market data (this gateway's market-data endpoint leads nowhere)
# a batched order's events come from the matcher's feed instead.
ready3 = os.path.join(T, "gw3.ready")
log3 = open(os.path.join(T, "gw3.log"), "w")
g3p = subprocess.Popen([os.path.join(os.environ["BIN"], "gpux-gateway"), "--http-port", "0",
                        "--matcher-cmd", f"ipc://{T}/cmd", "--matcher-pub", f"ipc://{T}/nopub",
                        "--rate", "0", "--ready-file", ready3],
                       stdout=log3, stderr=log3, env={k: v for k, v in os.environ.items() if k != "GPUX_ADMIN_KEY"})
for _ in range(600):
    if os.path.exists(ready3):
        break
    time.sleep(0.1)
URL3 = open(ready3).read().split("GATEWAY_URL=")[1].split()[0] if os.path.exists(ready3) else "http://127.0.0.1:1"
feed_ok, feed_batched, detail = True, False, []
for round_ in range(10):
    jobs = [(B1, "POST", "/v1/orders", order("buy", qty=8, price="0.01", tif="ioc", client_order_id=f"fd{round_}-{k}"))
            for k in range(10)]
    if round_ == 0:
        jobs.append((B2, "POST", "/v1/orders", order("buy", qty=8, price="2.50", start=hour(3, 18), end=hour(3, 19))))
    res = burst(jobs, URL3)
    good = [r_[0] == 201 and r_[1]["client_order_id"] == f"fd{round_}-{k}" and r_[1]["status"] == "cancelled"
            for k, r_ in enumerate(res[:10])]
    if round_ == 0:
        good.append(res[10][0] == 201 and res[10][1]["status"] == "filled" and len(res[10][1]["fills"]) == 1
                    and res[10][1]["fills"][0]["price"] == "2.00")
    if not all(good):
        feed_ok = False
        detail.append([r_[:3] for g_, r_ in zip(good, res) if not g_][:3])
    c3 = Client(URL3)
    _, _, mtext, _ = c3.req("GET", "/metrics")
    if any(l_.startswith("gpux_gateway_batched_commands_total ") and float(l_.split()[1]) > 0
           for l_ in mtext.splitlines()):
        feed_batched = True
        break
ok(feed_ok and feed_batched, "without market data, batched orders are completed from the matcher's feed", detail)
g3p.send_signal(signal.SIGTERM)
g3p.wait(timeout=30)

# ---- a connection whose answer is pending (gateway/http.c keep_reading, write_now) ---------------------
# While a request waits for the matcher the gateway keeps its connection in
# the epoll set and writes the answer as soon as it has it. A client that
# sends its next requests before the answer (pipelining) must get every
# answer whole and in order; one that hangs up meanwhile must not disturb
# the gateway; "Connection: close" gets its whole answer, then the close.
# The matcher is stopped (SIGSTOP) so the first request really is pending.
def raw_request(method, path, key=None, body=None, extra=""):
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    data = json.dumps(body) if body is not None else ""
    return (f"{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}{extra}"
            f"Content-Length: {len(data)}\r\n\r\n{data}").encode()

def read_responses(s, count):
    """Reads count HTTP responses (Content-Length framed); [(status, body)]."""
    buf, out = b"", []
    while len(out) < count:
        head_end = buf.find(b"\r\n\r\n")
        if head_end >= 0:
            head = buf[:head_end].decode("latin-1")
            m = re.search(r"(?im)^content-length: *(\d+)", head)
            blen = int(m.group(1)) if m else 0
            if len(buf) >= head_end + 4 + blen:
                out.append((int(head.split()[1]), buf[head_end + 4:head_end + 4 + blen].decode()))
                buf = buf[head_end + 4 + blen:]
                continue
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return out, buf

mpid = int(os.environ["MPID"])
hp = hostport(URL)
os.kill(mpid, signal.SIGSTOP)
try:
    s = socket.create_connection(hp, timeout=20)
    s.sendall(raw_request("POST", "/v1/orders", b1["api_key"],
                          order("buy", qty=8, price="0.01", tif="ioc", client_order_id="pipe-1")))
    time.sleep(0.3)  # the order is waiting for the (stopped) matcher
    s.sendall(raw_request("GET", "/v1/markets") +
              raw_request("POST", "/v1/orders", b1["api_key"],
                          order("buy", qty=8, price="0.01", tif="ioc", client_order_id="pipe-1")))
    time.sleep(0.3)
    gone = socket.create_connection(hp, timeout=20)  # hangs up while its order is pending
    gone.sendall(raw_request("POST", "/v1/orders", b1["api_key"],
                             order("buy", qty=8, price="0.01", tif="ioc", client_order_id="pipe-gone")))
    time.sleep(0.3)
    gone.close()
    time.sleep(0.3)
finally:
    os.kill(mpid, signal.SIGCONT)
res, rest = read_responses(s, 3)
s.close()
js_ = [json.loads(b_) if b_.startswith("{") or b_.startswith("[") else None for _, b_ in res]
ok(len(res) == 3 and res[0][0] == 201 and js_[0]["client_order_id"] == "pipe-1"
   and res[1][0] == 200 and "H100" in res[1][1]
   and res[2][0] == 200 and js_[2]["order_id"] == js_[0]["order_id"] and rest == b"",
   "requests sent before a pending answer get their answers whole and in order", (res, rest))
st, js, _, _ = B1.req("POST", "/v1/orders", order("buy", qty=8, price="0.01", tif="ioc", client_order_id="pipe-gone"))
ok(st == 200 and js["client_order_id"] == "pipe-gone",
   "a client that hung up while pending: its order was still taken once, the gateway serves on", js)
s = socket.create_connection(hp, timeout=20)
s.sendall(raw_request("POST", "/v1/orders", b1["api_key"], order("buy", qty=8, price="0.01", tif="ioc"),
                      extra="Connection: close\r\n"))
res, rest = read_responses(s, 2)  # one answer, then the close
s.close()
ok(len(res) == 1 and res[0][0] == 201 and json.loads(res[0][1])["status"] == "cancelled" and rest == b"",
   "Connection: close gets its whole answer, then the close", (res, rest))

# ---- matcher down: 503, nothing accepted ------------------------------------------------------------------
os.kill(int(os.environ["MPID"]), signal.SIGKILL)
time.sleep(0.3)
st, js, _, _ = B1.req("POST", "/v1/orders", order("buy", qty=8, price="2.00"))
ok(is_error(st, js, "unavailable", 503), "matcher killed: POST /v1/orders is 503 unavailable", js)
res = burst([(B1 if k % 2 else B2, "POST", "/v1/orders", order("buy", qty=8, price="0.01", tif="ioc"))
             for k in range(8)])
ok(all(is_error(r_[0], r_[1], "unavailable", 503) for r_ in res),
   "matcher killed: every request of a concurrent burst gets 503 unavailable", [r_[:3] for r_ in res])
st, js, _, _ = pub.req("GET", "/healthz")
ok(st == 503 and js["matcher"] == "down", "matcher killed: /healthz 503 says matcher down", js)
# The matcher comes back on the same data: the gateway reconnects by itself,
# keys and orders are still there.
mlog = open(os.path.join(T, "matcher2.log"), "w")
mp = subprocess.Popen([os.path.join(os.environ["BIN"], "gpux-matcher")] + os.environ["MATCHER_ARGS"].split(),
                      stdout=mlog, stderr=mlog)
st = 0
for _ in range(100):
    st, js, _, _ = B1.req("GET", f"/v1/orders/{bid['order_id']}")
    if st == 200:
        break
    time.sleep(0.2)
ok(st == 200 and js["order_id"] == bid["order_id"] and js["status"] == "filled", "after a matcher restart the gateway reconnects; orders and keys survived", js)
st, js, _, _ = B1.req("POST", "/v1/orders", order("buy", qty=8, price="0.01", tif="ioc"))
ok(st == 201 and js["status"] == "cancelled", "orders are accepted again after the restart (ioc remainder shows cancelled)", js)

# Graceful shutdown: a request in flight when SIGTERM arrives still gets its
# answer (here 503: the matcher is gone, so it waits out its timeout).
import threading
mp.kill()
mp.wait()
inflight = {}
def late_request():
    try:
        c = Client(URL, b1["api_key"])
        inflight["r"] = c.req("POST", "/v1/orders", order("buy", qty=8, price="0.01", tif="ioc"))
    except Exception as e:
        inflight["e"] = e
th = threading.Thread(target=late_request)
th.start()
time.sleep(0.3)
os.kill(int(os.environ["GPID"]), signal.SIGTERM)
th.join(30)
r = inflight.get("r")
ok(r is not None and is_error(r[0], r[1], "unavailable", 503), "SIGTERM: the request in flight still gets its answer", inflight)
for _ in range(100):
    try:
        os.kill(int(os.environ["GPID"]), 0)
    except ProcessLookupError:
        break
    time.sleep(0.1)
open(os.path.join(T, "count"), "w").write(str(n))
sys.exit(1 if failed else 0)
PYEOF
rc=$?
# The gateway was told SIGTERM by the script: check it exited 0.
wait "$GPID" 2>/dev/null; grc=$?
n=$(( $(cat "$T/count" 2>/dev/null || echo 0) + 1 ))
if [ "$grc" -eq 0 ] && grep -q "stopped" "$T/gw.log"; then echo "ok $n - gateway exits 0 on SIGTERM"
else echo "not ok $n - gateway exits 0 on SIGTERM (exit $grc)"; rc=1; fi
echo "1..$n"
[ "$rc" -eq 0 ] || { sed 's/^/# gw: /' "$T/gw.log" | tail -20; sed 's/^/# matcher: /' "$T/matcher.log" | tail -10; }
exit $rc
