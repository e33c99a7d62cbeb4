# CORS: preflights answered by conflux (never upstream), the fields of actual answers on every status, the default
# policy, a route's own and cors: off, a proxy route's upstream fields replaced, hostile Origins, -t errors.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /users/{id}
    method: '*'
    body: '{"id": "{id}"}'
  - path: /fail
    status: 500
    body: '{}'
  - path: /hello
    body: '{"hello": true}'
    headers: { Access-Control-Allow-Origin: "*", Access-Control-Max-Age: "99999", X-Upstream: yes }
EOF
my $m = $mock->port;
my $admin = empty_port();

my $yaml = <<"EOF";
admin: 127.0.0.1:$admin
backends:
  svc: { url: "http://127.0.0.1:$m", timeout: 3s }
cors:
  origins: [https://app.example.com, "https://*.example.org", "http://localhost:3000"]
  methods: [GET, POST]
  headers: [Content-Type, X-Api-Key]
  expose_headers: [Server-Timing, Conflux-Complete]
  max_age: 10m
routes:
  - path: /agg/{id}
    methods: [GET, POST]
    calls: [{ name: user, backend: svc, path: "/users/{id}", method: POST, safe: true }]
  - path: /fails
    calls: [{ name: f, backend: svc, path: "/fail", required: true }]
  - path: /own
    methods: [GET, PUT]
    cors: { origins: [https://own.example.net], credentials: true, headers: [authorization] }
    calls: [{ name: user, backend: svc, path: "/users/own", method: PUT, safe: true }]
  - path: /off
    cors: off
    calls: [{ name: user, backend: svc, path: "/users/off" }]
  - path: /opt
    methods: [GET, OPTIONS]
    calls: [{ name: user, backend: svc, path: "/users/opt" }]
  - path: /any
    cors: { origins: ["*"] }
    calls: [{ name: user, backend: svc, path: "/users/any" }]
  - path: /px/{rest*}
    proxy: svc
EOF
my $gw = spawn_conflux($yaml);
my $base = $gw->url;

sub req {
    my ($method, $path, %h) = @_;
    return http_request($method, "$base$path", \%h);
}

sub preflight {
    my ($path, $origin, $method, $headers) = @_;
    return req('OPTIONS', $path, Origin => $origin, 'Access-Control-Request-Method' => $method,
               defined $headers ? ('Access-Control-Request-Headers' => $headers) : ());
}

sub vary_has_origin { return (($_[0]->{headers}{vary} // '') =~ /(?:^|,\s*)Origin(?:,|$)/i) ? 1 : 0 }

subtest 'a preflight on a route with CORS is answered by conflux' => sub {
    $mock->reset;
    my $r = preflight('/agg/1', 'https://app.example.com', 'POST', 'content-type, X-API-Key');
    is($r->{status}, 204, 'status 204');
    is($r->{headers}{'access-control-allow-origin'}, 'https://app.example.com', 'the origin echoed');
    is($r->{headers}{'access-control-allow-methods'}, 'GET, POST', 'the methods');
    is($r->{headers}{'access-control-allow-headers'}, 'content-type, x-api-key', 'the headers');
    is($r->{headers}{'access-control-max-age'}, '600', 'max_age in seconds');
    ok(!exists $r->{headers}{'access-control-allow-credentials'}, 'no credentials');
    ok(vary_has_origin($r), 'Vary: Origin');
    is($r->{body}, '', 'no body');
    $r = preflight('/agg/1', 'https://deep.sub.example.org', 'GET');
    is($r->{status}, 204, 'a wildcard subdomain origin');
    is($r->{headers}{'access-control-allow-origin'}, 'https://deep.sub.example.org', 'echoed');
    $r = preflight('/agg/1', 'http://localhost:3000', 'GET');
    is($r->{status}, 204, 'an origin with a port');
    is($mock->stats->{total}, 0, 'nothing reached the upstream');
    is(scalar @{ $mock->journal }, 0, 'the journal is empty');
};

subtest 'a preflight that is refused: 403, no CORS fields, nothing upstream' => sub {
    $mock->reset;
    for my $case (['https://evil.example.com', 'GET', undef, 'an origin not listed', qr/Origin is not allowed/],
                  ['https://evil-example.org', 'GET', undef, 'a look-alike of the wildcard domain', qr/Origin is not allowed/],
                  ['https://example.org', 'GET', undef, 'the wildcard domain itself', qr/Origin is not allowed/],
                  ['http://app.example.org', 'GET', undef, 'another scheme than the wildcard\'s', qr/Origin is not allowed/],
                  ['https://app.example.com.evil.net', 'GET', undef, 'the origin as a prefix', qr/Origin is not allowed/],
                  ['https://a..example.org', 'GET', undef, 'an empty label', qr/Origin is not allowed/],
                  ['https://APP.example.com', 'GET', undef, 'upper case (browsers send lower case)', qr/Origin is not allowed/],
                  ['https://app.example.com', 'DELETE', undef, 'a method the route does not take', qr/method is not allowed.*GET, POST/],
                  ['https://app.example.com', 'BREW', undef, 'an unknown method', qr/method is not allowed/],
                  ['https://app.example.com', 'GET', 'content-type, x-secret', 'a header not listed', qr/header is not allowed/]) {
        my ($origin, $method, $headers, $name, $why) = @$case;
        my $r = preflight('/agg/1', $origin, $method, $headers);
        is($r->{status}, 403, "$name: 403");
        like($r->{body}, qr/"error":"cors_denied"/, "$name: cors_denied");
        like($r->{body}, $why, "$name: says what");
        ok(!grep(/^access-control-/, keys %{ $r->{headers} }), "$name: no Access-Control-* field");
        ok(vary_has_origin($r), "$name: Vary: Origin");
    }
    is($mock->stats->{total}, 0, 'nothing reached the upstream');
};

subtest 'OPTIONS that is not a preflight keeps its meaning' => sub {
    $mock->reset;
    my $r = req('OPTIONS', '/agg/1', Origin => 'https://app.example.com');
    is($r->{status}, 405, 'without Access-Control-Request-Method: 405 on a route without OPTIONS');
    like($r->{headers}{allow}, qr/GET/, 'with Allow');
    is($r->{headers}{'access-control-allow-origin'}, 'https://app.example.com', 'and the CORS fields of the route');
    $r = req('OPTIONS', '/opt');
    is($r->{status}, 200, 'a route that lists OPTIONS serves a plain OPTIONS');
    is($mock->stats->{total}, 1, 'from the upstream');
    $r = preflight('/opt', 'https://app.example.com', 'GET');
    is($r->{status}, 204, 'but a preflight on it is conflux\'s');
    is($mock->stats->{total}, 1, 'and does not go upstream');
    $r = preflight('/nowhere', 'https://app.example.com', 'GET');
    is($r->{status}, 404, 'no route for the path: 404');
};

subtest 'actual requests: the fields on every answer of the route' => sub {
    my $r = req('GET', '/agg/7', Origin => 'https://app.example.com');
    is($r->{status}, 200, 'status 200');
    is($r->{headers}{'access-control-allow-origin'}, 'https://app.example.com', 'Allow-Origin');
    is($r->{headers}{'access-control-expose-headers'}, 'server-timing, conflux-complete', 'Expose-Headers');
    ok(!exists $r->{headers}{'access-control-allow-methods'}, 'no preflight fields');
    ok(vary_has_origin($r), 'Vary: Origin');
    $r = req('GET', '/fails', Origin => 'https://x.example.org');
    is($r->{status}, 502, 'a failed required call: 502');
    is($r->{headers}{'access-control-allow-origin'}, 'https://x.example.org', 'with Allow-Origin');
    $r = req('DELETE', '/agg/7', Origin => 'https://app.example.com');
    is($r->{status}, 405, 'status 405');
    is($r->{headers}{'access-control-allow-origin'}, 'https://app.example.com', 'with Allow-Origin');
    $r = req('GET', '/no/such/route', Origin => 'https://app.example.com');
    is($r->{status}, 404, 'no route: 404');
    is($r->{headers}{'access-control-allow-origin'}, 'https://app.example.com', 'with the default policy\'s fields');
    $r = req('GET', '/agg/7', Origin => 'https://evil.example.com');
    is($r->{status}, 200, 'a disallowed origin is still served (the browser withholds the answer)');
    ok(!grep(/^access-control-/, keys %{ $r->{headers} }), 'but gets no CORS field');
    ok(vary_has_origin($r), 'Vary: Origin all the same');
    $r = req('GET', '/agg/7');
    ok(!grep(/^access-control-/, keys %{ $r->{headers} }), 'no Origin: no CORS field');
    ok(vary_has_origin($r), 'Vary: Origin');
};

subtest 'a route\'s own policy replaces the default; cors: off drops it' => sub {
    my $r = preflight('/own', 'https://own.example.net', 'PUT', 'Authorization');
    is($r->{status}, 204, 'its own origin and method');
    is($r->{headers}{'access-control-allow-origin'}, 'https://own.example.net', 'echoed');
    is($r->{headers}{'access-control-allow-credentials'}, 'true', 'credentials');
    is($r->{headers}{'access-control-allow-methods'}, 'GET, PUT', 'the route\'s methods (its policy names none)');
    ok(!exists $r->{headers}{'access-control-max-age'}, 'no max_age: no Max-Age');
    is(preflight('/own', 'https://app.example.com', 'GET')->{status}, 403, 'the default\'s origins do not apply');
    is(preflight('/own', 'https://own.example.net', 'GET', 'content-type')->{status}, 403, 'nor its headers');
    $r = req('GET', '/own', Origin => 'https://own.example.net');
    is($r->{headers}{'access-control-allow-credentials'}, 'true', 'actual answer: credentials');
    ok(!exists $r->{headers}{'access-control-expose-headers'}, 'and not the default\'s expose_headers');

    $mock->reset;
    $r = preflight('/off', 'https://app.example.com', 'GET');
    is($r->{status}, 405, 'cors: off: a preflight is an OPTIONS request like any other (405 here)');
    $r = req('GET', '/off', Origin => 'https://app.example.com');
    is($r->{status}, 200, 'status 200');
    ok(!grep(/^access-control-/, keys %{ $r->{headers} }), 'no CORS field');
    ok(!vary_has_origin($r), 'no Vary: Origin');

    $r = req('GET', '/any', Origin => 'https://whoever.test');
    is($r->{headers}{'access-control-allow-origin'}, '*', 'origins ["*"]: "*"');
    $r = preflight('/any', 'https://whoever.test', 'GET');
    is($r->{status}, 204, 'preflight');
    is($r->{headers}{'access-control-allow-origin'}, '*', '"*"');
};

subtest 'a proxy route: conflux\'s policy replaces the upstream\'s Access-Control-* fields' => sub {
    $mock->reset;
    my $r = req('GET', '/px/hello', Origin => 'https://app.example.com');
    is($r->{status}, 200, 'status 200');
    is($r->{headers}{'access-control-allow-origin'}, 'https://app.example.com', 'conflux\'s Allow-Origin, not the upstream\'s "*"');
    ok(!exists $r->{headers}{'access-control-max-age'}, 'the upstream\'s other Access-Control-* dropped');
    is($r->{headers}{'x-upstream'}, 'yes', 'its other fields kept');
    $r = req('GET', '/px/hello', Origin => 'https://evil.example.com');
    ok(!exists $r->{headers}{'access-control-allow-origin'}, 'a disallowed origin gets none, even though the upstream said "*"');
    $mock->reset;
    $r = preflight('/px/hello', 'https://app.example.com', 'GET');
    is($r->{status}, 204, 'a preflight on a proxy route');
    is($mock->stats->{total}, 0, 'is not passed through');
};

subtest 'hostile Origin values are compared, never echoed' => sub {
    my $port = $gw->port;
    my $long = 'https://app.example.com' . ('a' x 5000);
    my $r = raw_request($port, "GET /agg/1 HTTP/1.1\r\nHost: x\r\nOrigin: $long\r\nConnection: close\r\n\r\n");
    is($r->{status}, 200, 'a 5 KB Origin: served');
    ok(!exists $r->{headers}{'access-control-allow-origin'}, 'not allowed, not echoed');
    $r = raw_request($port, "GET /agg/1 HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example.com\x01x\r\nConnection: close\r\n\r\n");
    ok(!exists $r->{headers}{'access-control-allow-origin'}, 'a control byte: not allowed');
    $r = raw_request($port, "OPTIONS /agg/1 HTTP/1.1\r\nHost: x\r\nOrigin: https://x\".example.org\r\n"
                     . "Access-Control-Request-Method: GET\r\nConnection: close\r\n\r\n");
    is($r->{status}, 403, 'a quote inside a wildcard match: refused');
    unlike($r->{raw}, qr/x"\.example/, 'and not reflected anywhere');
    ok(wait_until(sub { $gw->metric('conflux_inflight_requests') == 0 }, 3), 'nothing left in flight');
};

subtest 'preflights are counted like other requests' => sub {
    my $before = $gw->metric('conflux_requests_total{route="/agg/{id}",status="204"}') // 0;
    preflight('/agg/1', 'https://app.example.com', 'GET');
    ok(wait_until(sub { ($gw->metric('conflux_requests_total{route="/agg/{id}",status="204"}') // 0) == $before + 1 }, 3),
       'conflux_requests_total{status="204"} of the route');
};

sub check {
    my ($cors, $extra) = @_;
    my $file = write_file(tmpdir() . "/cors-check-" . int(rand(1e9)) . ".yaml", <<"EOF");
listen: [{ port: 8080 }]
backends:
  svc: { url: "http://127.0.0.1:1" }
routes:
  - path: /a
    calls: [{ name: a, backend: svc, path: "/a" }]
    cors: $cors
EOF
    my $r = run_cmd([bindir() . '/conflux', '-t', '-c', $file]);
    return ($r->{code} // -1, $r->{out} . $r->{err});
}

subtest '-t: cors: errors with file:line:col' => sub {
    for my $case (['{ origins: ["*"], credentials: true }', qr/:7:\d+: routes\[0\]\.cors\.credentials: true with origins "\*"/, '"*" with credentials'],
                  ['{ origins: [https://app.example.com/] }', qr/:7:\d+: routes\[0\]\.cors\.origins\[0\]: "https:\/\/app\.example\.com\/" is not an origin: an origin has no path/, 'a trailing slash'],
                  ['{ origins: [app.example.com] }', qr/routes\[0\]\.cors\.origins\[0\]: "app\.example\.com" is not an origin/, 'no scheme'],
                  ['{ origins: ["https://*.com"] }', qr/cors\.origins\[0\]: .*too wide a wildcard/, 'a wildcard over a TLD'],
                  ['{ origins: ["https://a.*.example.com"] }', qr/cors\.origins\[0\]: .*is not an origin/, 'a wildcard not first'],
                  ['{ origins: [null] }', qr/cors\.origins\[0\]: "null" is not allowed/, '"null"'],
                  ['{ origins: ["https://x.example.com:99999"] }', qr/cors\.origins\[0\]: .*bad port/, 'a bad port'],
                  ['{ origins: [https://a.example.com], methods: [GET, FETCH] }', qr/cors\.methods\[1\]: unknown method "FETCH"/, 'an unknown method'],
                  ['{ origins: [https://a.example.com], headers: ["x y"] }', qr/cors\.headers\[0\]: "x y" is not a header field name/, 'a bad header name'],
                  ['{ origins: [https://a.example.com], max_age: 2d }', qr/cors\.max_age/, 'max_age over 24h'],
                  ['{ methods: [GET] }', qr/routes\[0\]\.cors: needs origins:/, 'no origins'],
                  ['{ origins: [https://a.example.com], origin: x }', qr/cors: unknown key "origin"/, 'an unknown key'],
                  ['on', qr/routes\[0\]\.cors: expected \{origins: \[\.\.\.\], \.\.\.\} or off/, 'a scalar other than off']) {
        my ($cors, $re, $name) = @$case;
        my ($code, $out) = check($cors);
        is($code, 1, "$name: exit 1");
        like($out, $re, "$name: the message") or diag $out;
    }
    my ($code, $out) = check('{ origins: [HTTPS://App.Example.COM, "https://*.example.org:8443", "http://[::1]:3000"], credentials: true }');
    is($code, 0, 'good origins pass') or diag $out;
    ($code) = check('off');
    is($code, 0, 'cors: off passes');
};

subtest '--explain shows each route\'s policy' => sub {
    my $r = run_cmd([bindir() . '/conflux', '--explain', '-c', $gw->{config}]);
    like($r->{out}, qr{route /agg/\{id\}.*\n  cors \(the default\): origins https://app\.example\.com, http://localhost:3000, https://\*\.example\.org; methods GET, POST; headers content-type, x-api-key; exposes server-timing, conflux-complete; max_age 600s; credentials false\n},
         'the default on a route');
    like($r->{out}, qr{route /own .*\n  cors \(its own\): origins https://own\.example\.net; methods GET, PUT; headers authorization; credentials true\n}, 'its own');
    unlike($r->{out}, qr{route /off [^\n]*\n  cors}, 'none on cors: off');
};

subtest 'a reload applies a changed policy' => sub {
    (my $changed = slurp($gw->{config})) =~ s{origins: \[https://app\.example\.com, }{origins: [https://new.example.com, } or die;
    write_file($gw->{config}, $changed);
    $gw->signal('HUP');
    ok(wait_until(sub { $gw->log_text =~ /^conflux: reloaded /m }, 10), 'reloaded') or diag($gw->log_text);
    is(preflight('/agg/1', 'https://new.example.com', 'GET')->{status}, 204, 'the new origin is allowed');
    is(preflight('/agg/1', 'https://app.example.com', 'GET')->{status}, 403, 'the one taken out is not');
    is(req('GET', '/agg/1', Origin => 'https://new.example.com')->{headers}{'access-control-allow-origin'}, 'https://new.example.com',
       'actual answers follow');
};

$gw->stop;
done_testing;
