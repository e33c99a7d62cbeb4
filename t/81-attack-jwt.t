# Attacks on auth: jwt as a hostile client and a hostile JWK Set would make them: tokens forged every known way (alg
# confusion, embedded keys, header tricks), claims at the bounds of int64 (judged before the signature), an RSA key with
# e = 1 in the set (anyone could forge for it), the cache after exp and after a reload that changes the audience, the
# bearer field in odd spellings, HTTP/2, the query string, a proxy route. Each must end in a 401 that sends nothing
# upstream, and the gateway must live on.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use CfJwt;
use Digest::SHA qw(hmac_sha256 hmac_sha384 hmac_sha512 sha256);
use JSON::PP ();
use Test::More;
use IO::Socket::INET;

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /users/{id}
    body: '{"id": "{id}"}'
EOF
my $m = $mock->port;
my $admin = empty_port();
my $dir = tmpdir();
my $jwks = "$dir/jwt-attack-jwks-$$.json";
my $weak_jwks = "$dir/jwt-attack-weak-$$.json";
my $json = JSON::PP->new->canonical;

my $rsa = make_key('RS256', 'r1');
my $ec = make_key('ES256', 'e1');
my $ed = make_key('EdDSA', 'd1');
my $evil = make_key('RS256', 'r1'); # the attacker's own key, with the kid of the real one
write_file($jwks, jwks_json($rsa, $ec, $ed));

# a set with one sound key and one RSA key whose e is 1: for it a signature is its own padded digest
my $weak = { %{ make_key('RS256', 'weak') } };
$weak->{e} = "\x01";
# and an Ed25519 key that is the identity point: with it R = identity, S = 0 verifies every message
my $tiny = { kty => 'OKP', crv => 'Ed25519', kid => 'tiny', x => b64u("\x01" . ("\x00" x 31)) };
write_file($weak_jwks, jwks_json($ec, $weak, $tiny));

my ($cert, $key) = self_signed_cert() or die 'openssl could not make a certificate';
my ($port, $tls_port) = (empty_port(), empty_port());
my $config = <<"EOF";
listen:
  - { host: 127.0.0.1, port: $port }
  - { host: 127.0.0.1, port: $tls_port, tls: { certificate: $cert, key: $key }, http2: true }
admin: 127.0.0.1:$admin
threads: 1
auth:
  jwt: { jwks_file: "$jwks", issuer: "https://idp.test", audience: [api], leeway: 0s }
backends:
  svc: { url: "http://127.0.0.1:$m", timeout: 5s }
routes:
  - path: /me
    calls: [{ name: user, backend: svc, path: "/users/{jwt.sub}" }]
  - path: /weak
    auth: { jwt: { jwks_file: "$weak_jwks" } }
    calls: [{ name: user, backend: svc, path: "/users/weak" }]
  - path: /px/{rest*}
    methods: [GET, POST]
    proxy: svc
EOF
my $gw = spawn_conflux($config, port => $port);
my $base = $gw->url;

sub claims { return { iss => 'https://idp.test', aud => 'api', sub => 'alice', exp => time + 600, @_ } }

sub get {
    my ($path, $token, %h) = @_;
    $h{Authorization} = "Bearer $token" if defined $token;
    return http_request('GET', "$base$path", \%h);
}

sub refused {
    my ($r, $desc, $name) = @_;
    is($r->{status}, 401, "$name: 401") or diag "$r->{status} $r->{body}";
    like($r->{headers}{'www-authenticate'} // '', $desc, "$name: why") if defined $desc;
}

subtest 'claims at the int64 bounds are judged without overflow (before the signature, so anyone can send them)' => sub {
    $mock->reset;
    my $max = '9223372036854775807';
    my $body = '{"aud":"api","exp":' . $max . ',"iss":"https://idp.test","sub":"forever"}';
    # on /weak, whose policy has the default leeway (30 s): exp + leeway is what overflowed
    my $r = get('/weak', token_for($ec, $body));
    is($r->{status}, 200, 'exp the largest int64, signed: 200 (it was refused as expired, or aborted under UBSan)')
        or diag $r->{body};
    my ($h, $p) = split /\./, token_for($ec, $body);
    refused(get('/weak', "$h.$p." . b64u('x' x 64)), qr/signature/, 'the same claims with a forged signature');
    refused(get('/weak', token_for($ec, '{"aud":"api","exp":-9223372036854775808,"iss":"https://idp.test"}')), qr/expired/,
            'exp the smallest int64');
    refused(get('/weak', token_for($ec, claims(nbf => 0 + $max))), qr/not valid yet/, 'nbf the largest int64');
    refused(get('/weak', token_for($ec, claims(iat => 0 + $max))), qr/not valid yet/, 'iat the largest int64');
    refused(get('/me', token_for($rsa, claims(exp => 1e300))), qr/claims/, 'exp 1e300');
    refused(get('/me', token_for($rsa, claims(exp => JSON::PP::true))), qr/claims/, 'exp true');
    refused(get('/me', token_for($rsa, claims(exp => undef))), qr/claims/, 'exp null');
    is(get('/me', token_for($rsa, claims()))->{status}, 200, 'the gateway lives on');
};

# RFC 8017 §9.2: EMSA-PKCS1-v1_5 of $input under SHA-256, $k bytes long
sub pkcs1_em {
    my ($input, $k) = @_;
    my $t = pack('H*', '3031300d060960864801650304020105000420') . sha256($input);
    return "\x00\x01" . ("\xff" x ($k - length($t) - 3)) . "\x00" . $t;
}

subtest 'an RSA key with e = 1 or an Ed25519 key of small order in the set is skipped: with it anyone forges a token' => sub {
    $mock->reset;
    my $input = b64u('{"alg":"RS256","kid":"weak"}') . '.' . b64u($json->encode(claims(sub => 'mallory')));
    my $forged = "$input." . b64u(pkcs1_em($input, length $weak->{n}));
    refused(get('/weak', $forged), qr/no key/, 'a token "signed" with no private key at all');
    my $ed_input = b64u('{"alg":"EdDSA","kid":"tiny"}') . '.' . b64u($json->encode(claims(sub => 'mallory')));
    refused(get('/weak', "$ed_input." . b64u("\x01" . ("\x00" x 63))), qr/no key/,
            'EdDSA with an Ed25519 key of small order: R the identity and S = 0');
    is(get('/weak', token_for($ec, claims()))->{status}, 200, 'the sound key of the same set works');
    is($mock->stub_count('GET /users/{id}'), 1, 'only the good token reached the upstream');
};

my $now = time;
my $good = token_for($rsa, claims());
my @parts = split /\./, $good;
my $payload = b64u($json->encode(claims(sub => 'root')));
sub with_header { my ($h, $sig) = @_; return b64u(ref $h ? $json->encode($h) : $h) . ".$payload." . ($sig // $parts[2]) }
my $n_b64 = b64u($rsa->{n});
my $jwk_text = $json->encode(CfJwt::jwk($rsa));
my @forged;
for my $alg (qw(HS256 HS384 HS512)) {
    my $mac = { HS256 => \&hmac_sha256, HS384 => \&hmac_sha384, HS512 => \&hmac_sha512 }->{$alg};
    for my $secret (['PEM', $rsa->{pub}], ['DER', $rsa->{der}], ['JWK JSON', $jwk_text], ['n', $n_b64], ['raw n', $rsa->{n}]) {
        my $in = b64u($json->encode({ alg => $alg, kid => 'r1', typ => 'JWT' })) . ".$payload";
        push @forged, ["$alg with the public key's $secret->[0] as secret", "$in." . b64u($mac->($in, $secret->[1])), qr/algorithm/];
    }
}
push @forged,
    (map { ["alg $_->[0]", with_header({ alg => $_->[0], kid => 'r1' }, $_->[1]), qr/algorithm|JWS/] }
     ['none', ''], ['None', 'AAAA'], ['NONE', 'AAAA'], ['rs256', undef], ['RS256 ', undef], ['PS256', undef], ['ES384', undef]),
    ['alg a list', with_header({ alg => ['RS256'], kid => 'r1' }), qr/header/],
    ['alg a number', with_header({ alg => 256, kid => 'r1' }), qr/header/],
    ['no alg', with_header({ kid => 'r1' }), qr/header/],
    ['kid a number', with_header({ alg => 'RS256', kid => 1 }), qr/header/],
    ['kid an object', with_header({ alg => 'RS256', kid => { x => 'r1' } }), qr/header/],
    ['kid with NUL', with_header('{"alg":"RS256","kid":"r1\u0000"}'), qr/header/],
    ['kid a path', with_header({ alg => 'RS256', kid => '../../etc/passwd' }), qr/no key/],
    ['kid 5,000 bytes', with_header({ alg => 'RS256', kid => 'k' x 5000 }), qr/no key/],
    ['crit empty', with_header({ alg => 'RS256', kid => 'r1', crit => [] }), qr/header/],
    # the attacker signs with a key of its own and names it in the header: it must be ignored, never fetched or trusted
    ['an embedded jwk', token_for($evil, claims(sub => 'root'), header => { alg => 'RS256', kid => 'r1', jwk => CfJwt::jwk($evil) }),
     qr/signature/],
    ['a jku', token_for($evil, claims(sub => 'root'), header => { alg => 'RS256', kid => 'r1', jku => "http://127.0.0.1:$m/jwks" }),
     qr/signature/],
    ['an x5u', token_for($evil, claims(sub => 'root'), header => { alg => 'RS256', kid => 'r1', x5u => "http://127.0.0.1:$m/x" }),
     qr/signature/],
    ['an x5c', token_for($evil, claims(sub => 'root'), header => { alg => 'RS256', kid => 'r1', x5c => [b64u($evil->{der})] }),
     qr/signature/],
    ['the right RSA signature under the EC kid', token_for($rsa, claims(), header => { alg => 'RS256', kid => 'e1' }), qr/no key/],
    ['an EdDSA signature under ES256', token_for($ed, claims(), header => { alg => 'ES256', kid => 'd1' }), qr/no key/],
    ['an empty payload', "$parts[0]..$parts[2]", qr/JWS/],
    ['an empty signature', "$parts[0].$parts[1].", qr/JWS/],
    ['a stray bit in the last character', $parts[0] . ".$parts[1]." . substr($parts[2], 0, -1)
         . (substr($parts[2], -1) =~ /[AQgw]/ ? chr(ord(substr($parts[2], -1)) + 1) : 'B'), qr/JWS|signature/],
    ['a "/" in the signature', "$parts[0].$parts[1]." . ($parts[2] =~ tr{_-}{/+}r) . '/', qr/JWS/],
    ['a trailing dot', "$good.", qr/JWS/],
    ['a leading dot', ".$good", qr/JWS/],
    # signed with the real key: the claims themselves
    ['exp twice, the second one valid', token_for($rsa, '{"aud":"api","exp":1,"iss":"https://idp.test","exp":' . ($now + 600) . '}'),
     qr/claims/],
    ['a claim nested 2,100 deep (jansson stops at 2,048)', token_for($rsa, $json->encode(claims(deep => 'D')) =~ s/"D"/('[' x 2100) . (']' x 2100)/er),
     qr/claims/],
    ['aud holding no string', token_for($rsa, claims(aud => [1, { api => 1 }, ['api'], undef])), qr/audience/],
    ['iss with a trailing slash', token_for($rsa, claims(iss => 'https://idp.test/')), qr/issuer/],
    ['iss a list', token_for($rsa, claims(iss => ['https://idp.test'])), qr/issuer/],
    ['exp a numeric string', token_for($rsa, claims(exp => '' . ($now + 600))), qr/claims/];

subtest 'forged tokens: every one a 401, nothing upstream' => sub {
    $mock->reset;
    for my $case (@forged) {
        my ($name, $token, $desc) = @$case;
        refused(get('/me', $token), $desc, $name);
    }
    is($mock->stats->{total}, 0, 'the upstream saw no request') or diag explain $mock->journal;
    is(scalar @{ $mock->journal('/jwks') }, 0, 'and no jku was fetched');
    is(get('/me', $good)->{status}, 200, 'a good token still passes');
};

subtest 'the Authorization field: odd spellings, the query string, HTTP/2' => sub {
    $mock->reset;
    refused(get('/me', undef, Authorization => "Bearer\t$good"), qr/realm/, 'a tab after the scheme');
    refused(get('/me', undef, Authorization => "Bearer:$good"), qr/realm/, 'a colon after the scheme');
    refused(get('/me', undef, Authorization => "Token $good"), qr/realm/, 'another scheme');
    refused(get('/me', undef, Authorization => $good), qr/realm/, 'no scheme');
    refused(get('/me', undef, Authorization => "Bearer $good $good"), qr/JWS/, 'two tokens');
    refused(get('/me', undef, Authorization => "Bearer $good,"), qr/JWS/, 'a trailing comma');
    refused(get("/me?access_token=$good"), qr/realm/, 'the token in the query string (RFC 6750 §2.3) is not taken');
    refused(get('/me', undef, Cookie => "access_token=$good"), qr/realm/, 'nor in a cookie');
    is(get('/me', undef, Authorization => "bearer  $good")->{status}, 200, 'lower case and two spaces: taken');
    my ($raw) = raw_exchange($port, "GET /me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $good \t \r\nConnection: close\r\n\r\n");
    like($raw // '', qr{^HTTP/1\.1 200 }, 'whitespace after the token (OWS, no part of the value: RFC 9110 §5.5): taken');
    ($raw) = raw_exchange($port, "GET /me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer\r\n $good\r\nConnection: close\r\n\r\n");
    like($raw // '', qr{^HTTP/1\.1 400 }, 'the token on a folded line (obs-fold): 400');
    is($mock->stub_count('GET /users/{id}'), 2, 'only the two good ones went upstream');
  SKIP: {
        my $curl = run_cmd(['curl', '--version']);
        skip 'no curl with HTTP/2', 3 unless ($curl->{code} // 1) == 0 && $curl->{out} =~ /HTTP2/;
        my $h2 = sub {
            my @h = map { ('-H', "Authorization: $_") } @_;
            my $r = run_cmd(['curl', '-sk', '--http2', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', @h,
                             "https://127.0.0.1:$tls_port/me"], timeout => 10);
            return $r->{out};
        };
        is($h2->("Bearer $good"), '2 200', 'HTTP/2 with a good token: 200');
        is($h2->('Bearer ' . $forged[0][1]), '2 401', 'HTTP/2 with a forged one: 401');
        is($h2->("Bearer $good", "Bearer $good"), '2 401', 'HTTP/2 with two Authorization fields: 401');
    }
};

subtest 'claims in {jwt.sub}: never a new segment, query, fragment or line upstream' => sub {
    $mock->reset;
    for my $case (["a\r\nX-Injected: 1", qr{^/users/a%0D%0AX-Injected%3A%201$}], ['a?admin=1#x', qr{^/users/a%3Fadmin%3D1%23x$}],
                  ['a%2F..%2Fadmin', qr{^/users/a%252F..%252Fadmin$}], [42, qr{^/users/42$}], ['x' x 4000, qr{^/users/x{4000}$}],
                  ["\xc3\xa9t\xc3\xa9", qr{^/users/%C3%A9t%C3%A9$}]) {
        my ($sub, $want) = @$case;
        (my $name = substr($sub, 0, 20)) =~ s/[^ -~]/?/g;
        my $r = get('/me', token_for($ec, claims(sub => $sub)));
        is($r->{status}, 200, "sub \"$name\": 200") or diag $r->{body};
        like($mock->journal->[-1]{path} // '', $want, "sub \"$name\": encoded in one segment");
    }
    my $n = $mock->stats->{total};
    for my $sub ('..', '.', 'a/../b', '/admin', 'a\\b') {
        is(get('/me', token_for($ec, claims(sub => $sub)))->{status}, 400, "sub \"$sub\": 400 before any call");
    }
    for my $sub ({ a => 1 }, [1], undef, JSON::PP::true) {
        my $r = get('/me', token_for($ec, claims(sub => $sub)));
        my $what = !defined $sub ? 'null' : ref $sub eq 'HASH' ? 'an object' : ref $sub eq 'ARRAY' ? 'an array' : 'true';
        if ($what eq 'true') {
            like($mock->journal->[-1]{path} // '', qr{^/users/true$}, 'sub true: sent as "true"');
        } else {
            like(join(' ', values %{ $r->{headers} }), qr/missing_param/, "sub $what: missing_param") or diag explain $r;
        }
    }
    is($mock->stats->{total}, $n + 1, 'only sub: true went upstream');
    my ($h, $p, $sig) = split /\./, token_for($ec, claims());
    my $latin1 = b64u('{"aud":"api","exp":' . (time + 600) . ',"iss":"https://idp.test","sub":"' . "\xe9" . '"}');
    refused(get('/me', "$h.$latin1.$sig"), qr/claims|signature/, 'a payload that is not UTF-8');
};

subtest 'a proxy route enforces the token and sends nothing upstream without one' => sub {
    $mock->reset;
    refused(get('/px/a'), qr/realm/, 'no token');
    refused(get('/px/a', $forged[0][1]), qr/algorithm/, 'a forged token');
    is($mock->stats->{total}, 0, 'nothing upstream');
    my $r = get('/px/users/p', $good);
    is($r->{status}, 200, 'a good token: 200') or diag $r->{body};
    my $j = $mock->journal;
    # documented: a proxy route passes the field through (Envoy's jwt_authn strips it unless `forward: true`)
    like($j->[-1]{headers}{authorization} // '', qr/^Bearer /, 'the Authorization field goes upstream as documented')
        or diag explain $j->[-1];
};

subtest 'Expect: 100-continue without a token on a route with auth' => sub {
    $mock->reset;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 5) or die "connect: $!";
    print $s "POST /px/a HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n";
    my $head = '';
    my $deadline = time + 5;
    while ($head !~ /\r\n\r\n/ && time < $deadline) {
        my $n = sysread($s, my $chunk, 4096);
        last unless $n;
        $head .= $chunk;
    }
    close $s;
    # the early judgement of an Expect: 100-continue head answers the 401 before the client sends its body
    like($head, qr{^HTTP/1\.1 401 }, 'the answer is the 401, not 100 Continue');
    like($head, qr{\r\nWWW-Authenticate: Bearer realm="conflux"\r\n}i, 'with WWW-Authenticate');
    # with a field (any token: it is judged once the request is read), the client is asked for its body
    my $s2 = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 5) or die "connect: $!";
    print $s2 "POST /px/a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nauthorization: Bearer x.y.z\r\nExpect: 100-continue\r\n\r\n";
    my $first = '';
    $deadline = time + 5;
    while ($first !~ /\r\n\r\n/ && time < $deadline) {
        my $n = sysread($s2, my $chunk, 4096);
        last unless $n;
        $first .= $chunk;
    }
    close $s2;
    like($first, qr{^HTTP/1\.1 100 }, 'an Authorization field (any case): 100 Continue');
    is($mock->stats->{total}, 0, 'nothing upstream');
};

subtest 'the cache: an entry ends with exp, and a reload that changes the audience drops its tokens' => sub {
    $mock->reset;
    my $exp = time + 2;
    my $short = token_for($ec, claims(exp => $exp, sub => 'brief'));
    is(get('/me', $short)->{status}, 200, 'a token that expires in 2 s: 200 (now cached)');
    ok(wait_until(sub { time > $exp }, 5), 'its exp has passed');
    refused(get('/me', $short), qr/expired/, 'the cached token is refused once expired (leeway 0)');

    my $tok = token_for($ec, claims(sub => 'aud-change'));
    is(get('/me', $tok)->{status}, 200, 'aud api: 200 (now cached)');
    (my $other = slurp($gw->{config})) =~ s/audience: \[api\]/audience: [other]/ or die;
    write_file($gw->{config}, $other);
    $gw->signal('HUP');
    ok(wait_until(sub { $gw->log_count(qr/^conflux: reloaded /m) >= 1 }, 10), 'reloaded') or diag $gw->log_text;
    refused(get('/me', $tok), qr/audience/, 'the cached token is judged again under the new audience');
};

subtest 'a rejected reload does not change the keys: the jwks_file it read stays unused until a reload is taken' => sub {
    my $rsa2 = make_key('RS256', 'r2');
    my $cfg = slurp($gw->{config}); # its audience is [other] since the last subtest: the tokens name both
    write_file($jwks, jwks_json($rsa2, $ec, $ed));
    (my $bad = $cfg) =~ s/^threads: 1$/threads: 2/m or die;
    write_file($gw->{config}, $bad);
    my $rejected = $gw->log_count(qr/^conflux: reload rejected/m);
    $gw->signal('HUP');
    ok(wait_until(sub { $gw->log_count(qr/^conflux: reload rejected/m) > $rejected }, 10), 'the reload is rejected')
        or diag $gw->log_text;
    is(get('/me', token_for($rsa, claims(sub => 'still', aud => ['api', 'other'])))->{status}, 200, 'the running config still takes the old key');
    refused(get('/me', token_for($rsa2, claims(sub => 'early', aud => ['api', 'other']))), qr/no key/, 'and not yet the new one');
    write_file($gw->{config}, $cfg);
    my $reloaded = $gw->log_count(qr/^conflux: reloaded /m);
    $gw->signal('HUP');
    ok(wait_until(sub { $gw->log_count(qr/^conflux: reloaded /m) > $reloaded }, 10), 'a good reload') or diag $gw->log_text;
    is(get('/me', token_for($rsa2, claims(sub => 'now', aud => ['api', 'other'])))->{status}, 200, 'takes the new key');
    refused(get('/me', token_for($rsa, claims(sub => 'gone', aud => ['api', 'other']))), qr/no key/, 'and drops the old one');
};

$gw->stop;

# a hostile or broken JWK Set server: every bad answer keeps the last good set, and nothing it names is fetched
sub publish {
    my ($status, $body, %headers) = @_;
    my $r = http_request('POST', $mock->url('/__mock/stubs'), { 'Content-Type' => 'application/json' },
                         $json->encode({ path => '/jwks', status => $status, body => $body, body_raw => JSON::PP::true,
                                         %headers ? (headers => \%headers) : () }));
    die "publish: $r->{status} $r->{body}\n" unless $r->{status} == 200;
}

subtest 'jwks_url: a hostile server (huge, too many keys, a kid twice, a redirect, e = 1) never replaces the last good set' => sub {
    $mock->reset;
    publish(200, jwks_json($rsa, $ec));
    my $u = spawn_conflux(<<"EOF2");
threads: 1
backends:
  svc: { url: "http://127.0.0.1:$m", timeout: 5s }
routes:
  - path: /me
    auth: { jwt: { jwks_url: "http://127.0.0.1:$m/jwks", refresh: 1s } }
    calls: [{ name: user, backend: svc, path: "/users/{jwt.sub}" }]
EOF2
    my $tok = token_for($ec, claims(sub => 'kept'));
    my $ok = sub { http_request('GET', $u->url('/me'), { Authorization => "Bearer $tok" })->{status} == 200 };
    ok(wait_until($ok, 10), 'the good set is fetched') or diag $u->log_text;
    my $pad = '"' . ('x' x (300 * 1024)) . '"';
    my $many = $json->encode({ keys => [map { CfJwt::jwk($ec, kid => "k$_") } 1 .. 65] });
    my $twice = $json->encode({ keys => [CfJwt::jwk($evil, kid => 'e1'), CfJwt::jwk($ec)] });
    for my $case ([200, '{"keys": [], "pad": ' . $pad . '}', 'a 300 KB answer'], [200, $many, '65 keys', qr/more than 64 keys/],
                  [200, $twice, 'a kid twice', qr/already used/], [200, jwks_json($weak), 'only a key with e = 1', qr/no usable key/],
                  [302, '', 'a redirect to a set of the attacker', qr/status 302/, Location => "http://127.0.0.1:$m/evil-jwks"],
                  [200, '{"keys": [' . ('[' x 5000) . (']' x 5000) . ']}', 'JSON nested 5,000 deep', qr/not JSON/]) {
        my ($status, $body, $name, $why, %h) = @$case;
        my $kept = $u->log_count(qr/keeping the key set fetched before/);
        publish($status, $body, %h);
        ok(wait_until(sub { $u->log_count(qr/keeping the key set fetched before/) > $kept }, 10), "$name: refused")
            or diag $u->log_text;
        like($u->log_text, $why, "$name: why") if $why;
        ok($ok->(), "$name: the last good set stays");
    }
    is(scalar @{ $mock->journal('/evil-jwks') }, 0, 'the redirect was not followed');
    # RFC 7517 §5: a malformed key is ignored, not the whole set: a rotation that adds one still brings the new key
    my $rot = make_key('ES256', 'rotated');
    my $odd = { kty => 'EC', crv => 'P-256', kid => 'odd', x => b64u("\x01" x 31), y => b64u("\x02" x 32) };
    publish(200, $json->encode({ keys => [$odd, CfJwt::jwk($ec), CfJwt::jwk($rot)] }));
    my $rtok = token_for($rot, claims(sub => 'rotated'));
    ok(wait_until(sub { http_request('GET', $u->url('/me'), { Authorization => "Bearer $rtok" })->{status} == 200 }, 10),
       'a set with a malformed key beside good ones is taken: the rotated key works') or diag $u->log_text;
    like($u->log_text, qr/jwks_url \S+: keys\[0\]: a malformed EC key, skipped/, 'one line says which key was skipped');
    ok($ok->(), 'and the other key of the set');
    refused(http_request('GET', $u->url('/me'), { Authorization => 'Bearer ' . token_for($evil, claims(), header => { alg => 'RS256', kid => 'e1' }) }),
            qr/no key/, 'the attacker key under the EC kid');
    # a server that never answers: the fetch gives up at its 10 s deadline, and a stop does not wait for it
    my $kept = $u->log_count(qr/keeping the key set fetched before/);
    my $r = http_request('POST', $mock->url('/__mock/stubs'), { 'Content-Type' => 'application/json' },
                         $json->encode({ path => '/jwks', body => jwks_json($ec), delay => '60s' }));
    is($r->{status}, 200, 'the JWK Set now takes a minute');
    ok(wait_until(sub { $u->log_count(qr/keeping the key set fetched before/) > $kept }, 20), 'the fetch gives up')
        or diag $u->log_text;
    ok($ok->(), 'the last good set stays');
    $u->stop;
};

done_testing;
