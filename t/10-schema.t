# config/conflux.schema.json: the sample config validates, and the schema and `conflux -t` agree on good and bad files.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;

my $root = "$FindBin::Bin/..";
my $schema = "$root/config/conflux.schema.json";
my $validator = "$FindBin::Bin/lib/validate-schema.py";
my $conflux = bindir() . '/conflux';
plan skip_all => "$conflux is not built" unless -x $conflux;

# Debian's python3 with python3-jsonschema (>= 4, for draft 2020-12) and python3-yaml; another python3 on the PATH
# may lack them, so /usr/bin/python3 comes first.
my $probe = 'import yaml, jsonschema; jsonschema.Draft202012Validator';
my ($python) = grep { (run_cmd([$_, '-c', $probe], timeout => 30)->{code} // -1) == 0 }
    grep { -x } '/usr/bin/python3', map { "$_/python3" } split /:/, $ENV{PATH};
plan skip_all => 'no python3 with jsonschema >= 4 and yaml (Debian packages python3-jsonschema, python3-yaml)' unless $python;

my $dir = tmpdir();

# Validates files against the schema in one run; returns {file => "ok" or the message}. The validator exits 0 when
# every file is valid, 1 when one is not; anything else (or a file it did not answer for) is its own failure.
sub validate {
    my @files = @_;
    my $run = run_cmd([$python, $validator, $schema, @files], timeout => 60);
    my %r;
    for (split /\n/, $run->{out}) {
        if (/^ok (.*)$/) { $r{$1} = 'ok' }
        elsif (/^invalid (.*?): (.*)$/) { $r{$1} = $2 }
        else { diag("validator: $_") }
    }
    ok(defined $run->{code} && $run->{code} <= 1 && keys %r == @files, 'the validator answered for every file')
        or diag("exit " . ($run->{code} // 'by a signal') . "\n$run->{err}");
    return \%r;
}

# conflux -t -c FILE: (exit code, or -1 when a signal ended it; stderr). Bounded by 10 s.
sub conflux_t {
    my ($file) = @_;
    my $r = run_cmd([$conflux, '-t', '-c', $file], timeout => 10);
    return ($r->{code} // -1, $r->{err});
}

subtest 'the schema is a valid draft 2020-12 schema' => sub {
    my $check = "import json, jsonschema; s = json.load(open('$schema')); jsonschema.Draft202012Validator.check_schema(s); "
        . "assert s['\$schema'] == 'https://json-schema.org/draft/2020-12/schema'";
    my $r = run_cmd([$python, '-c', $check], timeout => 60);
    is($r->{code}, 0, 'check_schema passes') or diag($r->{err});
};

subtest 'the sample configs validate' => sub {
    # every conflux config in config/ (those with a top-level routes:; the mock's stub files are another format)
    my @samples = grep { slurp($_) =~ /^routes:/m } glob "$root/config/*.yaml";
    ok((grep { m{/conflux\.yaml$} } @samples), 'config/conflux.yaml is among them');
    my $r = validate(@samples);
    is($r->{$_}, 'ok', s{^\Q$root/\E}{}r) for @samples;
};

my $head = <<'YAML';
listen:
  - port: 8080
backends:
  users:
    url: http://127.0.0.1:9001
YAML
(my $no_listen = $head) =~ s/\Alisten:\n  - port: 8080\n// or die; # the backends alone
my $route = <<'YAML';
routes:
  - path: /u/{id}
    calls:
      - name: profile
        backend: users
        path: /users/{id}
YAML

# Accepted by both.
my @good = (
    ['the smallest config', $head . $route],
    ['every key conflux takes today', <<'YAML'],
listen:
  - port: 8080
  - host: "[::]"
    port: 8081
threads: 1
admin: 127.0.0.1:9901
shutdown_timeout: 0
limits: { max_request_body: 1MiB, max_response_body: 8388608, max_inflight: 100, max_client_connections: 5000, send_timeout: 5s }
backends:
  users:
    servers: [http://127.0.0.1:9001, "http://[::1]:9002/base"]
    timeout: 800ms
    connect_timeout: 200ms
    max_connections: 64
    circuit_breaker: { failures: 3, open_for: 2s }
    health: { path: /healthz, interval: 1s, timeout: 200ms, healthy: 1, unhealthy: 2 }
    resolve_every: 1m
  legacy:
    url: http://localhost
routes:
  - path: /dash/{user_id}
    methods: [get, HEAD]
    deadline: 1s
    merge: merge
    on_conflict: last
    forward_headers: [Authorization, accept-language]
    forward_query: lang
    calls:
      - name: profile
        backend: users
        path: /users/{user_id}?x={query.x}
        timeout: 500ms
        required: true
        target: data.user
        allow: [id, name]
        rename: { name: full_name }
        encoded_slash: keep
      - name: orders
        backend: users
        path: /orders/{profile.id}
        on_error: omit
        deny: secret
        encoded_slash: refuse
      - name: extra
        backend: users
        path: /extra
        on_error: null
  - path: /legacy/{rest*}
    methods: GET
    deadline: 2s
    proxy: legacy
YAML
    ['a bare admin port and empty limits', $head . "admin: 9901\nlimits: {}\n" . $route],
    ['admin on IPv6', $head . "admin: \"[::1]:9901\"\n" . $route],
    ['a proxy-only config', $head . "routes:\n  - path: /p/{r*}\n    proxy: users\n"],
    ['CORS: a default, a route\'s own, and off', $head
        . "cors: { origins: [https://app.example.com, \"https://*.example.org:8443\"], methods: [GET, post],\n"
        . "        headers: [Content-Type], expose_headers: Server-Timing, max_age: 10m, credentials: true }\n"
        . "routes:\n  - path: /a\n    cors: { origins: \"*\" }\n    proxy: users\n"
        . "  - path: /b\n    cors: off\n    proxy: users\n  - path: /c\n    proxy: users\n"],
    ['rate limits: by header, by client, per minute and hour, burst defaulted', $head
        . "routes:\n  - path: /a\n    rate_limit: { rate: 100/s, burst: 200, key: header.X-Api-Key }\n    proxy: users\n"
        . "  - path: /b\n    rate_limit: { rate: 600/m, key: client }\n    proxy: users\n"
        . "  - path: /c\n    rate_limit: { rate: 10/h, burst: 1, key: client }\n    proxy: users\n"],
    ['methods and bodies', $head . "routes:\n  - path: /o/{id}\n    methods: [POST, PUT]\n    calls:\n"
        . "      - { name: p, backend: users, path: /p }\n"
        . "      - { name: fwd, backend: users, path: /f, method: put, body: \"{request.body}\" }\n"
        . "      - name: t\n        backend: users\n        path: /t\n        method: POST\n"
        . "        body: { ids: \"{p.ids}\", note: \"for {id}\", n: 1, l: [true, null, 1.5, \"{{x}}\"] }\n"
        . "      - { name: d, backend: users, path: /d, method: DELETE }\n      - { name: g, backend: users, path: /g, method: GET, cache: 30s }\n"],
    ['foreach with its keys, and batch', $head . $route
        . "      - { name: f, backend: users, path: '/f/{item.id}', foreach: profile.friends, concurrency: 8, max_items: 500 }\n"
        . "      - { name: g, backend: users, path: '/g?ids={items}', foreach: profile.ids, batch: 50 }\n"],
);

# Refused by both: [name, yaml, what conflux's message must say].
my @bad = (
    ['an unknown top-level key', $head . "listn: []\n" . $route, qr/unknown key "listn"/],
    ['a misspelt backend key', $head . "    timout: 1s\n" . $route, qr/unknown key "timout"/],
    ['a duration with a space', $head . "shutdown_timeout: 5 sec\n" . $route, qr/not a duration/],
    ['a duration without a unit', $head . "shutdown_timeout: 500\n" . $route, qr/not a duration/],
    ['a zero call timeout', $head . $route . "        timeout: 0ms\n", qr/out of range/],
    ['a size with a space', $head . "limits: { max_request_body: 1 MB }\n" . $route, qr/not a size/],
    ['port 0', "listen:\n  - port: 0\n" . $no_listen . $route, qr/out of range/],
    ['port 70000', "listen:\n  - port: 70000\n" . $no_listen . $route, qr/out of range/],
    ['no listen', $no_listen . $route, qr/missing listen/],
    ['no routes', $head, qr/missing routes/],
    ['a route without calls or proxy', $head . "routes:\n  - path: /x\n", qr/needs calls: .* or proxy:/],
    ['a route with calls and proxy', $head . $route . "    proxy: users\n", qr/either calls: or proxy:/],
    ['merge on a proxy route', $head . "routes:\n  - path: /x\n    proxy: users\n    merge: merge\n", qr/only for routes with calls/],
    ['a call without backend', $head . "routes:\n  - path: /x\n    calls:\n      - name: a\n        path: /a\n", qr/missing backend/],
    ['a reserved call name', $head . ($route =~ s/name: profile/name: query/r), qr/reserved/],
    ['on_error: drop', $head . $route . "        on_error: drop\n", qr/not one of: null, omit/],
    ['a body on a GET call', $head . $route . "        body: { a: 1 }\n", qr/a GET call sends no body/],
    ['a body on a call that says GET', $head . $route . "        method: get\n        body: [1]\n", qr/a GET call sends no body/],
    ['cache: on a POST call', $head . $route . "        method: POST\n        cache: 30s\n", qr/only GET calls are cached/],
    ['method: HEAD', $head . $route . "        method: HEAD\n", qr/HEAD: its answer has no body/],
    ['method: FETCH', $head . $route . "        method: FETCH\n", qr/is not a call method/],
    ['encoded_slash: yes', $head . $route . "        encoded_slash: yes\n", qr/not one of: refuse, keep/],
    ['encoded_slash: keep with no value in the path', $head . ($route =~ s{/users/\{id\}}{/users?id={id}}r)
        . "        encoded_slash: keep\n", qr/keep has no effect: no value of \/users\?id=\{id\} fills a path segment/],
    ['merge: deep', $head . ($route =~ s{    calls:}{    merge: deep\n    calls:}r), qr/not one of: group, merge/],
    ['allow and deny together', $head . $route . "        allow: [a]\n        deny: [b]\n", qr/either allow: or deny:/],
    ['on_conflict without merge: merge', $head . ($route =~ s{    calls:}{    on_conflict: first\n    calls:}r),
        qr/only applies with merge: merge/],
    ['a hop-by-hop forwarded header', $head . ($route =~ s{    calls:}{    forward_headers: [Connection]\n    calls:}r),
        qr/hop-by-hop/],
    ['an unknown method', $head . ($route =~ s{    calls:}{    methods: [FETCH]\n    calls:}r), qr/unknown method "FETCH"/],
    ['url and servers together', $head . "    servers: [http://127.0.0.1:9002]\n" . $route, qr/either servers: or url:/],
    ['a backend without a server', "listen:\n  - port: 8080\nbackends:\n  users:\n    timeout: 1s\n" . $route,
        qr/needs servers:/],
    ['an ftp:// backend', $head =~ s{http://}{ftp://}r . $route, qr/is not an http/],
    ['a backend URL with a query', $head =~ s{9001}{9001/?a=b}r . $route, qr/may not have a query/],
    ['a bad backend name', $head =~ s{  users:}{  "9users":}r . $route =~ s{backend: users}{backend: "9users"}r,
        qr/a backend name is/],
    ['circuit_breaker: an unknown key', $head . "    circuit_breaker: { failure: 5 }\n" . $route, qr/unknown key "failure"/],
    ['circuit_breaker: failures 0', $head . "    circuit_breaker: { failures: 0 }\n" . $route, qr/out of range/],
    ['health without a path', $head . "    health: { interval: 5s }\n" . $route, qr/missing path/],
    ['health: a path without /', $head . "    health: { path: healthz }\n" . $route, qr/does not start with/],
    ['CORS: "*" with credentials', $head . "cors: { origins: \"*\", credentials: true }\n" . $route, qr/credentials: true with origins "\*"/],
    ['CORS: an origin with a path', $head . "cors: { origins: [https://app.example.com/] }\n" . $route, qr/an origin has no path/],
    ['CORS: no origins', $head . ($route =~ s{    calls:}{    cors: { methods: [GET] }\n    calls:}r), qr/needs origins:/],
    ['CORS: a scalar other than off', $head . ($route =~ s{    calls:}{    cors: none\n    calls:}r), qr/or off/],
    ['rate_limit: key jwt.a.b', $head . ($route =~ s{    calls:}{    rate_limit: { rate: 10/s, key: jwt.a.b }\n    calls:}r), qr/expected jwt\.CLAIM/],
    ['rate_limit: a rate per day', $head . ($route =~ s{    calls:}{    rate_limit: { rate: 10/d, key: client }\n    calls:}r), qr/expected a rate such as/],
    ['rate_limit: burst 0', $head . ($route =~ s{    calls:}{    rate_limit: { rate: 10/s, burst: 0, key: client }\n    calls:}r), qr/out of range/],
    ['rate_limit: no key', $head . ($route =~ s{    calls:}{    rate_limit: { rate: 10/s }\n    calls:}r), qr/needs key:/],
    ['concurrency without foreach', $head . $route . "        concurrency: 8\n", qr/goes with foreach:/],
    ['batch without foreach', $head . $route . "        batch: 8\n", qr/goes with foreach:/],
    ['foreach: concurrency 0', $head . $route . "      - { name: f, backend: users, path: '/f/{item}', foreach: profile.ids, concurrency: 0 }\n",
        qr/out of range \(1 to 256\)/],
    ['foreach: max_items 10001', $head . $route . "      - { name: f, backend: users, path: '/f/{item}', foreach: profile.ids, max_items: 10001 }\n",
        qr/out of range \(1 to 10000\)/],
    ['foreach: batch 0', $head . $route . "      - { name: f, backend: users, path: '/f?ids={items}', foreach: profile.ids, batch: 0 }\n",
        qr/out of range \(1 to 1000\)/],
    ['foreach: a number', $head . $route . "      - { name: f, backend: users, path: '/f/{item}', foreach: 7 }\n",
        qr/is not a call and a field path|unknown call/],
);

# A self-signed certificate for the TLS cases (conflux -t loads the files).
my ($cert, $key) = self_signed_cert();
my $tls = defined $cert;
diag('openssl could not make a certificate: the TLS cases are left out') unless $tls;

# The keys of threads, the access log, the cache and TLS (docs/configuration.md).
push @good, (
    ['threads, access log, shared cache', $head . "threads: 4\naccess_log: $dir/access.log\n"
        . "cache: { memory: 64MiB, memcached: 127.0.0.1:11211 }\n" . $route . "        cache: 30s\n"],
    ['access_log to stderr, memcached on a bare port, a cache policy', $head . "access_log: \"-\"\ncache: { memcached: 11211 }\n"
        . $route . "        cache: { ttl: 1000ms, stale_while_revalidate: 1m, stale_if_error: 0 }\n"],
    $tls ? (
        ['a TLS listener with http2 and an https backend', "listen:\n  - port: 8443\n"
            . "    tls: { certificate: $cert, key: $key }\n    http2: true\n"
            . "backends:\n  users:\n    url: https://127.0.0.1:9443/api\n    sni: api.example\n    ca_file: $cert\n" . $route],
    ) : (),
);
# retries, the retry budget and hedging (docs/configuration.md, `backends`)
push @good, (
    ['retries with retry_on and a budget, a fixed hedge', $head . "    retries: 2\n    retry_on: [connect_failed, timeout, status_500]\n"
        . "    retry_budget: { percent: 50, min: 1 }\n    hedge_after: 150ms\n    max_hedges: 2\n" . $route],
    ['hedge_after: p95 with its fallback', $head . "    hedge_after: p95\n    hedge_fallback: 80ms\n" . $route],
);
push @bad, (
    ['retries: 11', $head . "    retries: 11\n" . $route, qr/out of range/],
    ['retry_on: status_200', $head . "    retry_on: [status_200]\n" . $route, qr/not a failure that can be retried/],
    ['retry_on: deadline', $head . "    retry_on: [deadline]\n" . $route, qr/not a failure that can be retried/],
    ['hedge_after: p50', $head . "    hedge_after: p50\n" . $route, qr/p90, p95 or p99/],
    ['max_hedges: 0', $head . "    max_hedges: 0\n" . $route, qr/out of range/],
    ['retry_budget: {percent: 101}', $head . "    retry_budget: { percent: 101 }\n" . $route, qr/out of range/],
    ['retry_budget: {ratio: 1}', $head . "    retry_budget: { ratio: 1 }\n" . $route, qr/unknown key|ratio/],
);
push @bad, (
    ['threads: 65', $head . "threads: 65\n" . $route, qr/out of range \(1 to 64\)/],
    ['a cache ttl under 1s', $head . $route . "        cache: 500ms\n", qr/between 1s and 30 days/],
    ['cache: 30 (no unit)', $head . $route . "        cache: 30\n", qr/not a duration/],
    ['a cache policy without ttl', $head . $route . "        cache: { stale_if_error: 10m }\n", qr/missing ttl/],
    ['a cache size with a space', $head . "cache: { memory: 1 GB }\n" . $route, qr/not a size/],
    ['an unknown cache key', $head . "cache: { memcache: 127.0.0.1:11211 }\n" . $route, qr/unknown key "memcache"/],
    ['tls without a key', "listen:\n  - port: 8443\n    tls: { certificate: /c.pem }\n" . $no_listen . $route,
        qr/needs both certificate: and key:/],
    ['http2 without tls', "listen:\n  - port: 8443\n    http2: true\n" . $no_listen . $route, qr/it needs tls:/],
    ['an sni that is not a host name', $head . "    sni: bad_name\n" . $route, qr/not a host name/],
);

# auth: jwt (docs/configuration.md, `auth`), with a JWK Set of one Ed25519 key
my $jwks = write_file("$dir/jwks.json", '{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "' . ('B' x 42) . 'A' . '", "kid": "k"}]}');
push @good, (
    ['auth: jwt at the top level, replaced and turned off on routes; claims in a template and a rate limit key',
     $head . "auth:\n  jwt: { jwks_file: $jwks, issuer: https://idp.example, audience: [api], algorithms: [EdDSA], leeway: 10s }\n"
        . "routes:\n  - path: /me\n    rate_limit: { rate: 10/s, key: jwt.sub }\n"
        . "    calls: [{ name: me, backend: users, path: '/users/{jwt.sub}' }]\n"
        . "  - path: /own\n    auth: { jwt: { jwks_file: $jwks, audience: api, algorithms: EdDSA, require_exp: false } }\n"
        . "    calls: [{ name: me, backend: users, path: /own }]\n"
        . "  - path: /open\n    auth: off\n    calls: [{ name: me, backend: users, path: /open }]\n"
        . "  - path: /url\n    auth: { jwt: { jwks_url: 'https://idp.example/jwks.json', refresh: 5m } }\n"
        . "    calls: [{ name: me, backend: users, path: /url }]\n"],
);
push @bad, (
    ['auth: algorithms HS256', $head . "auth: { jwt: { jwks_file: $jwks, algorithms: [HS256] } }\n" . $route, qr/"HS256" is not accepted/],
    ['auth: jwt without jwks_file', $head . "auth: { jwt: { issuer: x } }\n" . $route, qr/needs jwks_file: or jwks_url:/],
    ['auth: jwks_file and jwks_url', $head . "auth: { jwt: { jwks_file: $jwks, jwks_url: 'http://x/j' } }\n" . $route,
     qr/one or the other/],
    ['auth: refresh with jwks_file', $head . "auth: { jwt: { jwks_file: $jwks, refresh: 1m } }\n" . $route, qr/goes with jwks_url/],
    ['auth: jwks_url ftp://', $head . "auth: { jwt: { jwks_url: 'ftp://x/j' } }\n" . $route, qr/jwks_url/],
    ['auth: off at the top level', $head . "auth: off\n" . $route, qr/expected \{jwt: \{\.\.\.\}\}/],
);

my $n = 0;
my (%file, %expect);
for my $set ([good => \@good], [bad => \@bad]) {
    for my $case (@{ $set->[1] }) {
        my $path = sprintf '%s/%s-%02d.yaml', $dir, $set->[0], ++$n;
        write_file($path, $case->[1]);
        $file{ $case->[0] } = $path;
    }
}
my $valid = validate(values %file);

subtest 'good configs: accepted by the schema and by conflux -t' => sub {
    for my $case (@good) {
        my $f = $file{ $case->[0] };
        is($valid->{$f}, 'ok', "$case->[0]: the schema accepts it");
        my ($rc, $err) = conflux_t($f);
        is($rc, 0, "$case->[0]: conflux -t accepts it") or diag($err);
    }
};

subtest 'bad configs: refused by the schema and by conflux -t' => sub {
    for my $case (@bad) {
        my $f = $file{ $case->[0] };
        ok(defined $valid->{$f} && $valid->{$f} ne 'ok', "$case->[0]: the schema refuses it")
            or diag(($valid->{$f} // 'no answer from the validator') . "\n$case->[1]");
        note("  schema: " . ($valid->{$f} // ''));
        my ($rc, $err) = conflux_t($f);
        is($rc, 1, "$case->[0]: conflux -t refuses it");
        like($err, $case->[2], "$case->[0]: conflux says why") or diag($err);
    }
};

done_testing();
