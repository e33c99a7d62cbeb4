# JWT validation (auth: jwt): RS256, ES256 and EdDSA tokens signed with keys made by the openssl command line pass and
# their claims fill templates ({jwt.sub}); every hostile token gets a 401 with WWW-Authenticate and reaches no upstream;
# leeway; auth: off and the top-level default; CORS preflights need no token; rate_limit key jwt.sub; the reload of a
# jwks_file (a rotated key is taken, a broken file keeps the previous set); metrics, the access log, -t and --explain.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use CfJwt;
use Digest::SHA qw(hmac_sha256);
use JSON::PP ();
use Test::More;

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /users/{id}
    body: '{"id": "{id}"}'
EOF
my $m = $mock->port;
my $admin = empty_port();
my $dir = tmpdir();
my $log = "$dir/jwt-access-$$.log";
my $jwks = "$dir/jwt-jwks-$$.json";
unlink $log;

my $rsa = make_key('RS256', 'r1');
my $ec = make_key('ES256', 'e1');
my $ed = make_key('EdDSA', 'd1');
write_file($jwks, jwks_json($rsa, $ec, $ed));

my $config = <<"EOF";
admin: 127.0.0.1:$admin
access_log: "$log"
threads: 2
auth:
  jwt: { jwks_file: "$jwks", issuer: "https://idp.test", audience: [api, other], leeway: 30s }
backends:
  svc: { url: "http://127.0.0.1:$m", timeout: 5s }
routes:
  - path: /me
    calls: [{ name: user, backend: svc, path: "/users/{jwt.sub}?tenant={jwt.tenant}" }]
  - path: /public
    auth: off
    calls: [{ name: user, backend: svc, path: "/users/public" }]
  - path: /limited
    rate_limit: { rate: 1/m, burst: 2, key: jwt.sub }
    calls: [{ name: user, backend: svc, path: "/users/limited" }]
  - path: /cors
    cors: { origins: ["https://app.test"] }
    calls: [{ name: user, backend: svc, path: "/users/cors" }]
  - path: /ed-only
    auth: { jwt: { jwks_file: "$jwks", algorithms: [EdDSA], require_exp: false } }
    calls: [{ name: user, backend: svc, path: "/users/{jwt.sub}" }]
EOF
my $gw = spawn_conflux($config);
my $base = $gw->url;
my $json = JSON::PP->new;

sub claims { return { iss => 'https://idp.test', aud => 'api', sub => 'alice', tenant => 't1', exp => time + 600, @_ } }

sub get {
    my ($path, $token, %h) = @_;
    $h{Authorization} = "Bearer $token" if defined $token;
    return http_request('GET', "$base$path", \%h);
}

subtest 'RS256, ES256 and EdDSA tokens pass; {jwt.sub} and {jwt.tenant} reach the upstream' => sub {
    for my $k ($rsa, $ec, $ed) {
        $mock->reset;
        my $sub = "user-$k->{alg}";
        my $r = get('/me', token_for($k, claims(sub => $sub, tenant => "t-$k->{alg}")));
        is($r->{status}, 200, "$k->{alg}: 200") or diag $r->{body};
        is(($json->decode($r->{body}) // {})->{user}{id}, $sub, "$k->{alg}: the upstream path carries the sub");
        my $j = $mock->journal;
        is(scalar @$j, 1, "$k->{alg}: one upstream request");
        like($j->[0]{query} // $j->[0]{path} // '', qr/tenant=t-\Q$k->{alg}\E/, "$k->{alg}: the query carries the tenant")
            or diag explain $j->[0];
    }
    my $r = get('/me', token_for($rsa, claims(aud => ['x', 'other'])));
    is($r->{status}, 200, 'aud as an array with one of the audiences');
    is(get("/me", "  " . token_for($ec, claims()))->{status}, 200, "spaces after the scheme");
    is(get('/me', undef, Authorization => 'bEaReR ' . token_for($ec, claims()))->{status}, 200, 'the scheme is case-insensitive');
};

subtest 'claim values are checked and encoded like any client value; a missing claim is missing_param' => sub {
    $mock->reset;
    my $r = get('/me', token_for($ec, claims(sub => '../admin')));
    is($r->{status}, 400, 'a sub of "../admin" cannot fill a path segment: 400');
    is((eval { $json->decode($r->{body}) } // {})->{error}, 'bad_param', 'bad_param');
    $r = get('/me', token_for($ec, claims(sub => 'a b&c', tenant => 'x&y=z')));
    is($r->{status}, 200, 'a sub with a space and an ampersand: 200');
    my $j = $mock->journal;
    like($j->[-1]{path} // '', qr{^/users/a%20b%26c}, 'percent-encoded in the path') or diag explain $j->[-1];
    like($j->[-1]{query} // '', qr/tenant=x%26y%3Dz/, 'and in the query');
    $r = get('/me', token_for($ec, claims(tenant => undef)));
    is($r->{body}, '{"user":null}', 'no tenant claim: the call fails (it is not required: null)') or diag $r->{body};
    like(join(' ', values %{ $r->{headers} }), qr/missing_param/, 'with missing_param') or diag explain $r->{headers};
    is($mock->stub_count('GET /users/{id}'), 1, 'only the good request went upstream');
};

# the hostile cases: [name, token or Authorization value, the error_description expected]
my $now = time;
my $good_input = b64u('{"alg":"RS256","kid":"r1"}') . '.' . b64u($json->encode(claims()));
my $hs_input = b64u('{"alg":"HS256","kid":"r1","typ":"JWT"}') . '.' . b64u($json->encode(claims()));
my $es = token_for($ec, claims());
(my $es_short = $es) =~ s/\.[^.]*$/'.' . b64u("\x01" x 63)/e;
my $good = token_for($rsa, claims());
my @parts = split /\./, $good;
(my $padded = $good) .= '=';
my @hostile = (
    ['alg none', b64u('{"alg":"none"}') . '.' . b64u($json->encode(claims())) . '.', qr/not a compact JWS|algorithm/],
    ['alg none with a signature', b64u('{"alg":"none","kid":"r1"}') . '.' . b64u($json->encode(claims())) . '.' . b64u('x'),
     qr/algorithm/],
    ['HS256 signed with the public key', "$hs_input." . b64u(hmac_sha256($hs_input, $rsa->{pub})), qr/algorithm/],
    ['a wrong kid', token_for($rsa, claims(), header => { alg => 'RS256', kid => 'nope' }), qr/no key/],
    ['a kid of another key type', token_for($rsa, claims(), header => { alg => 'RS256', kid => 'e1' }), qr/no key/],
    ['ES256 header on an RSA signature', token_for($rsa, claims(), header => { alg => 'ES256', kid => 'r1' }), qr/no key/],
    ['expired', token_for($rsa, claims(exp => $now - 120)), qr/expired/],
    ['no exp', token_for($rsa, { iss => 'https://idp.test', aud => 'api', sub => 'x' }), qr/expired/],
    ['not yet valid', token_for($rsa, claims(nbf => $now + 600)), qr/not valid yet/],
    ['issued in the future', token_for($rsa, claims(iat => $now + 600)), qr/not valid yet/],
    ['a wrong audience', token_for($rsa, claims(aud => 'someone-else')), qr/audience/],
    ['a wrong issuer', token_for($rsa, claims(iss => 'https://evil.test')), qr/issuer/],
    ['exp not a number', token_for($rsa, claims(exp => 'soon')), qr/claims/],
    ['bad base64', "$parts[0].\$\$\$.$parts[2]", qr/claims|JWS/],
    ['padding', $padded, qr/JWS/],
    ['a base64 "+"', "$parts[0].$parts[1]+.$parts[2]", qr/claims|JWS/],
    ['two parts', "$parts[0].$parts[1]", qr/JWS/],
    ['four parts', "$good.$parts[2]", qr/JWS/],
    ['a header that is not JSON', b64u('{alg:RS256') . ".$parts[1].$parts[2]", qr/header/],
    ['a header that is a JSON string', b64u('"RS256"') . ".$parts[1].$parts[2]", qr/header/],
    ['a payload that is not JSON', token_for($rsa, 'not json'), qr/claims/],
    ['duplicate members in the header', token_for($rsa, claims(), header => '{"alg":"RS256","kid":"r1","alg":"none"}'), qr/header/],
    ['duplicate members in the payload',
     token_for($rsa, '{"sub":"alice","iss":"https://idp.test","aud":"api","exp":' . ($now + 600) . ',"sub":"root"}'), qr/claims/],
    ['crit in the header', token_for($rsa, claims(), header => { alg => 'RS256', kid => 'r1', crit => ['x'] }), qr/header/],
    ['a bad signature', "$parts[0].$parts[1]." . b64u(sign_token($rsa, "$parts[0].x")), qr/signature/],
    ['another payload under a good signature', "$parts[0]." . b64u($json->encode(claims(sub => 'root'))) . ".$parts[2]",
     qr/signature/],
    ['an ES256 signature of the wrong length', $es_short, qr/signature/],
);

subtest 'every hostile token: 401, WWW-Authenticate invalid_token, no upstream request' => sub {
    $mock->reset;
    for my $case (@hostile) {
        my ($name, $token, $desc) = @$case;
        my $r = get('/me', $token);
        is($r->{status}, 401, "$name: 401") or diag $r->{body};
        my $www = $r->{headers}{'www-authenticate'} // '';
        like($www, qr/^Bearer error="invalid_token", error_description="[^"]*"$/, "$name: WWW-Authenticate");
        like($www, $desc, "$name: the description") or diag $www;
        my $doc = eval { $json->decode($r->{body}) } // {};
        is($doc->{error}, 'unauthorized', "$name: error: unauthorized");
        unlike($r->{body} . $www, qr/\Q$parts[1]\E/, "$name: the token is not echoed");
    }
    is($mock->stats->{total}, 0, 'the upstream saw no request');
};

subtest 'no token, another scheme, two Authorization fields' => sub {
    $mock->reset;
    my $r = get('/me');
    is($r->{status}, 401, 'no Authorization: 401');
    is($r->{headers}{'www-authenticate'}, 'Bearer realm="conflux"', 'only the realm (RFC 6750 §3.1)');
    $r = get('/me', undef, Authorization => 'Basic YWxpY2U6c2VjcmV0');
    is($r->{status}, 401, 'Basic: 401');
    is($r->{headers}{'www-authenticate'}, 'Bearer realm="conflux"', 'Basic: the realm');
    $r = get('/me', undef, Authorization => 'Bearer');
    is($r->{status}, 401, '"Bearer" alone: 401');
    my ($raw) = raw_exchange($gw->port,
                             "GET /me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $good\r\nAuthorization: Bearer $good\r\n"
                                 . "Connection: close\r\n\r\n");
    like($raw, qr{^HTTP/1\.1 401 }, 'two Authorization fields: 401');
    like($raw, qr/www-authenticate: Bearer error="invalid_token"/i, 'two fields: invalid_token');
    is($mock->stats->{total}, 0, 'the upstream saw no request');
};

subtest 'a 100 KB token is refused fast and the gateway lives on' => sub {
    my $big = 'eyJ' . ('A' x (100 * 1024));
    my $r = get('/me', $big);
    ok($r->{status} == 431 || $r->{status} == 401, "431 or 401 ($r->{status})");
    ok($r->{elapsed} < 2, 'fast');
    my $t = 'eyJhbGciOiJSUzI1NiJ9.' . ('A' x 9000) . '.AAAA';
    $r = get('/me', $t);
    is($r->{status}, 401, 'a 9 KB token (under the header bound, over the token bound): 401');
    is(get('/me', $good)->{status}, 200, 'a good token still passes');
};

subtest 'leeway: 30 s past exp passes within it, not beyond' => sub {
    is(get('/me', token_for($ec, claims(exp => time - 10)))->{status}, 200, 'exp 10 s ago: 200 (leeway 30 s)');
    is(get('/me', token_for($ec, claims(exp => time - 45)))->{status}, 401, 'exp 45 s ago: 401');
    is(get('/me', token_for($ec, claims(nbf => time + 10)))->{status}, 200, 'nbf in 10 s: 200');
};

subtest 'a route policy replaces the default: algorithms, require_exp: false, no iss/aud; auth: off' => sub {
    is(get('/ed-only', token_for($ed, { sub => 'ed' }))->{status}, 200, 'EdDSA without exp, iss or aud');
    my $r = get('/ed-only', token_for($rsa, { sub => 'rs' }));
    is($r->{status}, 401, 'RS256 where only EdDSA is accepted');
    like($r->{headers}{'www-authenticate'} // '', qr/algorithm/, 'the algorithm is refused');
    is(get('/public')->{status}, 200, 'auth: off: no token needed');
};

subtest 'a CORS preflight needs no token; the 401 carries the CORS fields' => sub {
    $mock->reset;
    my $r = http_request('OPTIONS', "$base/cors", { Origin => 'https://app.test', 'Access-Control-Request-Method' => 'GET' });
    is($r->{status}, 204, 'preflight: 204');
    $r = get('/cors', undef, Origin => 'https://app.test');
    is($r->{status}, 401, 'the request itself needs the token');
    is($r->{headers}{'access-control-allow-origin'}, 'https://app.test', 'and its 401 can be read by the page');
    is($mock->stats->{total}, 0, 'nothing upstream');
};

subtest 'rate_limit key jwt.sub: one bucket per subject' => sub {
    $mock->reset;
    my $a = token_for($rsa, claims(sub => 'rl-a'));
    my $b = token_for($ec, claims(sub => 'rl-b'));
    my $a2 = token_for($ed, claims(sub => 'rl-a', jti => 'another token'));
    is_deeply([map { get('/limited', $_)->{status} } $a, $a2, $a], [200, 200, 429], 'rl-a: two tokens share its bucket');
    is(get('/limited', $b)->{status}, 200, 'rl-b has its own');
    is(get('/limited')->{status}, 401, 'no token: 401 (the token is judged before the limit keyed by it)');
    is($mock->stub_count('GET /users/{id}'), 3, 'three requests reached the upstream');
};

subtest 'metrics and the access log name the reason; neither holds the token' => sub {
    like($gw->metrics->{'conflux_jwt_failures_total{route="/me",reason="expired"}'} // 0, qr/^[1-9]/, 'expired counted');
    ok(($gw->metrics->{'conflux_jwt_failures_total{route="/me",reason="bad_signature"}'} // 0) >= 3, 'bad_signature counted');
    ok(wait_until(sub { -s $log && slurp($log) =~ /"auth":"wrong_audience"/ }, 5), 'the access log has the reason');
    unlike(slurp($log), qr/\Q$parts[1]\E/, 'and no token');
};

# conflux -t on a one-route config whose route has the line $line and one call ($path, named $name): {code, out}
my $check_file = "$dir/jwt-check-$$.yaml";
sub conflux_t_route {
    my ($line, $path, $name) = @_;
    $path //= '/a';
    $name //= 'a';
    write_file($check_file, <<"EOF");
listen: [{ host: 127.0.0.1, port: 1 }]
backends:
  svc: { url: "http://127.0.0.1:$m" }
routes:
  - path: /a
    $line
    calls: [{ name: $name, backend: svc, path: "$path" }]
EOF
    my $r = run_cmd([bindir() . '/conflux', '-t', '-c', $check_file]);
    return { code => $r->{code}, out => $r->{out} . $r->{err} };
}

sub t_refuses {
    my ($name, $re, @route) = @_;
    my $r = conflux_t_route(@route);
    is($r->{code}, 1, "$name: exit 1");
    like($r->{out}, $re, "$name: the message") or diag $r->{out};
}

subtest '-t: errors with file:line:col' => sub {
    my $bad = "$dir/jwt-bad-$$.json";
    write_file($bad, '{"keys": []}');
    my $rsa1024 = make_key('RS1024', 'small');
    my $small = "$dir/jwt-small-$$.json";
    write_file($small, jwks_json($rsa1024));
    for my $case (
        ['auth: { jwt: { jwks_file: "/nonexistent/jwks.json" } }', qr/:6:\d+: routes\[0\]\.auth\.jwt\.jwks_file: cannot open/, 'a missing file'],
        ["auth: { jwt: { jwks_file: \"$bad\" } }", qr/jwks_file: no usable key/, 'no keys'],
        ["auth: { jwt: { jwks_file: \"$small\" } }", qr/jwks_file: no usable key/, 'an RSA key of 1024 bits'],
        ["auth: { jwt: { jwks_file: \"$jwks\", algorithms: [HS256] } }", qr/algorithms: "HS256" is not accepted/, 'HS256'],
        ["auth: { jwt: { jwks_file: \"$jwks\", algorithms: [none] } }", qr/algorithms: "none" is not accepted/, 'none'],
        ["auth: { jwt: { jwks_file: \"$jwks\", leeway: 1h } }", qr/leeway/, 'a leeway too long'],
        ["auth: { jwt: { issuer: x } }", qr/auth\.jwt: needs jwks_file: or jwks_url:/, 'no jwks_file'],
        ["auth: { basic: {} }", qr/auth: unknown key "basic"/, 'another kind'],
        ["rate_limit: { rate: 1/s, key: jwt.sub }", qr/rate_limit\.key: jwt\.sub needs the route's token/, 'jwt.sub without auth'],
        ["auth: off", qr/calls\[0\]\.path: \{jwt\.sub\} needs the route's token/, '{jwt.sub} without auth', '/u/{jwt.sub}'],
        ["auth: off", qr/calls\[0\]\.name: "jwt" is reserved in templates/, 'a call named jwt', '/a', 'jwt'],
        ) {
        my ($line, $re, $name, @call) = @$case;
        t_refuses($name, $re, $line, @call);
    }
};

subtest '--explain shows the policy' => sub {
    my $r = run_cmd([bindir() . '/conflux', '--explain', '-c', $gw->{config}]);
    like($r->{out}, qr{route /me .*\n  auth: jwt \(the default\), keys from \Q$jwks\E \(RS256 ES256 EdDSA\), iss https://idp.test, aud api \| other, leeway 30s},
         '/me');
    like($r->{out}, qr{route /ed-only .*\n  auth: jwt \(its own\), .*\(EdDSA\), iss not checked, aud not checked, leeway 30s, exp optional}, '/ed-only');
    unlike($r->{out}, qr{route /public .*\n  auth}, '/public has none');
};

subtest 'reload: a rotated jwks_file is taken; a broken one keeps the previous set' => sub {
    my $rsa2 = make_key('RS256', 'r2');
    my $old = token_for($rsa, claims(sub => 'old'));
    my $new = token_for($rsa2, claims(sub => 'new'));
    is(get('/me', $old)->{status}, 200, 'the old key works (and its token is cached)');
    is(get('/me', $new)->{status}, 401, 'the new key is not known yet');
    write_file($jwks, jwks_json($rsa2, $ec, $ed));
    $gw->signal('HUP');
    ok(wait_until(sub { $gw->log_count(qr/^conflux: reloaded /m) >= 1 }, 10), 'reloaded') or diag $gw->log_text;
    is(get('/me', $new)->{status}, 200, 'the new key works');
    is(get('/me', $old)->{status}, 401, 'a cached token of the removed key is refused');
    write_file($jwks, '{"keys": [');
    $gw->signal('HUP');
    ok(wait_until(sub { $gw->log_text =~ /jwks_file \Q$jwks\E: not JSON.*; keeping the key set read before/ }, 10),
       'one line says the file is bad') or diag $gw->log_text;
    ok(wait_until(sub { $gw->log_count(qr/^conflux: reloaded /m) >= 2 }, 10), 'the rest of the config reloaded');
    is(get('/me', $new)->{status}, 200, 'the previous set stays');
    is(get('/me', token_for($rsa2, claims(sub => 'new2')))->{status}, 200, 'for new tokens too');
};

$gw->stop;

# jwks_url: a JWK Set the mock serves (POST /__mock/stubs swaps it)
sub publish_jwks {
    my ($status, $body) = @_;
    my $r = http_request('POST', $mock->url('/__mock/stubs'), { 'Content-Type' => 'application/json' },
                         $json->encode({ path => '/jwks', status => $status, body => $body, body_raw => JSON::PP::true }));
    die "publish: $r->{status} $r->{body}\n" unless $r->{status} == 200;
}

subtest 'jwks_url: fetched off the request path; an unknown kid fetches early, once a minute; refresh; last good kept' => sub {
    $mock->reset;
    publish_jwks(503, 'not yet');
    my $url_config = <<"EOF";
threads: 1
backends:
  svc: { url: "http://127.0.0.1:$m", timeout: 5s }
routes:
  - path: /me
    auth: { jwt: { jwks_url: "http://127.0.0.1:$m/jwks", refresh: 1h, issuer: "https://idp.test", audience: api } }
    calls: [{ name: user, backend: svc, path: "/users/{jwt.sub}" }]
EOF
    my $u = spawn_conflux($url_config);
    my $ubase = $u->url;
    my $tok = token_for($ec, claims(sub => 'url-user'));
    ok(wait_until(sub { $u->log_text =~ m{jwks_url http://127\.0\.0\.1:$m/jwks: status 503; tokens are refused until a fetch succeeds} },
                  10), 'the failed first fetch says so') or diag $u->log_text;
    publish_jwks(200, jwks_json($rsa, $ec, $ed));
    my $r = http_request('GET', "$ubase/me", { Authorization => "Bearer $tok" });
    is($r->{status}, 401, 'no key set yet: 401');
    like($r->{headers}{'www-authenticate'} // '', qr/no keys/, 'no keys yet');
    ok(wait_until(sub { http_request('GET', "$ubase/me", { Authorization => "Bearer $tok" })->{status} == 200 }, 10),
       'that request made it fetch again at once (refresh is 1h): the token passes');
    my $fetches = sub { scalar @{ $mock->journal('/jwks') } }; # publishing a stub again restarts its count: the journal
    my $fetched = $fetches->();
    is($fetched, 2, 'two fetches so far');

    my $rsa2 = make_key('RS256', 'url-r2');
    publish_jwks(200, jwks_json($rsa2, $ec));
    my $new = token_for($rsa2, claims(sub => 'rotated'));
    is(http_request('GET', "$ubase/me", { Authorization => "Bearer $new" })->{status}, 401, 'an unknown kid: 401 at once');
    sleep 1;
    is($fetches->(), $fetched, 'and no fetch: the last early one was less than a minute ago');

    (my $faster = slurp($u->{config})) =~ s/refresh: 1h/refresh: 1s/ or die;
    write_file($u->{config}, $faster);
    $u->signal('HUP');
    ok(wait_until(sub { http_request('GET', "$ubase/me", { Authorization => "Bearer $new" })->{status} == 200 }, 10),
       'a reload to refresh: 1s: the rotated key is fetched');
    is(http_request('GET', "$ubase/me", { Authorization => "Bearer $tok" })->{status}, 200, 'the EC key is still there');
    is(http_request('GET', "$ubase/me", { Authorization => 'Bearer ' . token_for($rsa, claims()) })->{status}, 401,
       'the removed RSA key is gone');

    publish_jwks(500, 'broken');
    my $before = $fetches->();
    ok(wait_until(sub { $fetches->() >= $before + 2 }, 10), 'it keeps fetching every second');
    like($u->log_text, qr{jwks_url \S+: status 500; keeping the key set fetched before}, 'a failed fetch says the set is kept');
    is(http_request('GET', "$ubase/me", { Authorization => "Bearer $new" })->{status}, 200, 'the last good set stays');
    publish_jwks(200, '{"keys": "not a list"}');
    ok(wait_until(sub { $u->log_text =~ /jwks_url \S+: not a JWK Set.*; keeping the key set fetched before/ }, 10),
       'an answer that is no JWK Set is not taken');
    is(http_request('GET', "$ubase/me", { Authorization => "Bearer $new" })->{status}, 200, 'the last good set stays');
    $u->stop;
};

subtest 'jwks_url: -t checks it without fetching' => sub {
    $mock->reset;
    for my $case (['jwks_url: "ftp://x/jwks"', qr/jwks_url: /, 'a URL that is not http(s)'],
                  ["jwks_url: \"http://127.0.0.1:$m/jwks\", jwks_file: \"$jwks\"", qr/one or the other/, 'both'],
                  ["jwks_file: \"$jwks\", refresh: 1m", qr/refresh: goes with jwks_url/, 'refresh with a file'],
                  ["jwks_url: \"http://127.0.0.1:$m/jwks\", refresh: 0s", qr/refresh/, 'refresh 0']) {
        my ($jwt, $re, $name) = @$case;
        t_refuses($name, $re, "auth: { jwt: { $jwt } }");
    }
    my $r = conflux_t_route("auth: { jwt: { jwks_url: \"http://127.0.0.1:$m/jwks\" } }");
    is($r->{code}, 0, 'a good jwks_url: OK') or diag $r->{out};
    is(scalar @{ $mock->journal('/jwks') }, 0, 'and nothing fetched');
};

done_testing;

