# Rate limits: a burst gets exactly `burst` answers then 429s with Retry-After and the RateLimit fields; buckets refill;
# keys are separate (header values, the shared bucket of requests without the header, long values, the client address
# on a proxy route); a refused request never reaches the upstream and takes no max_inflight slot; metrics, the access
# log, -t errors, --explain, and a reload that changes the policy.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use JSON::PP ();
use Test::More;

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /users/{id}
    body: '{"id": "{id}"}'
  - path: /slow
    delay: 1500ms
    body: '{"slow": true}'
EOF
my $m = $mock->port;
my $admin = empty_port();
my $log = tmpdir() . "/ratelimit-access-$$.log";
unlink $log;

sub config {
    my ($burst) = @_;
    return <<"EOF";
admin: 127.0.0.1:$admin
access_log: "$log"
threads: 2
backends:
  svc: { url: "http://127.0.0.1:$m", timeout: 5s }
routes:
  - path: /keyed
    rate_limit: { rate: 1/m, burst: $burst, key: header.X-Api-Key }
    calls: [{ name: user, backend: svc, path: "/users/keyed" }]
  - path: /quick
    rate_limit: { rate: 2/s, burst: 1, key: header.X-Api-Key }
    calls: [{ name: user, backend: svc, path: "/users/quick" }]
  - path: /px/{rest*}
    rate_limit: { rate: 1/h, burst: 2, key: client }
    proxy: svc
  - path: /slow
    calls: [{ name: slow, backend: svc, path: /slow }]
  - path: /free
    calls: [{ name: user, backend: svc, path: "/users/free" }]
EOF
}

my $gw = spawn_conflux(config(5));
my $base = $gw->url;
my $json = JSON::PP->new;

sub get {
    my ($path, %h) = @_;
    return http_request('GET', "$base$path", \%h);
}

subtest 'a burst gets exactly burst answers, then 429 with Retry-After and the RateLimit fields' => sub {
    $mock->reset;
    my @r = map { get('/keyed', 'X-Api-Key' => 'alpha') } 1 .. 8;
    is_deeply([map { $_->{status} } @r], [200, 200, 200, 200, 200, 429, 429, 429], '5 x 200, then 429s');
    is($r[0]{headers}{'ratelimit-policy'}, '"default";q=1;w=60', 'RateLimit-Policy on a 200');
    is_deeply([map { ($_->{headers}{ratelimit} // '') =~ /;r=(\d+);/ ? $1 : 'none' } @r[0 .. 4]], [4, 3, 2, 1, 0],
              'RateLimit r= counts down on the 200s');
    my $no = $r[5];
    is($no->{headers}{'ratelimit-policy'}, '"default";q=1;w=60', 'RateLimit-Policy on the 429');
    my $retry = $no->{headers}{'retry-after'} // '';
    like($retry, qr/^\d+$/, "Retry-After in whole seconds ($retry)");
    ok($retry >= 1 && $retry <= 60, 'Retry-After within the 60 s a token takes');
    is($no->{headers}{ratelimit}, "\"default\";r=0;t=$retry", 'RateLimit: r=0 and t= Retry-After');
    my $doc = decode_json_ok($no->{body});
    is($doc->{error}, 'rate_limited', 'error: rate_limited') if $doc;
    like($no->{headers}{'content-type'} // '', qr{^application/json}, 'JSON');
    is($mock->stub_count('GET /users/{id}'), 5, 'the upstream saw 5 requests: the 429s never reached it');
};

subtest 'keys are separate; requests without the header share one bucket; long keys' => sub {
    $mock->reset;
    is(get('/keyed', 'X-Api-Key' => 'alpha')->{status}, 429, 'alpha is still refused');
    is(get('/keyed', 'X-Api-Key' => 'beta')->{status}, 200, 'beta has its own bucket');
    is(get('/keyed', 'x-api-key' => 'Alpha')->{status}, 200, 'values are compared exactly (Alpha is not alpha)');
    my @anon = map { get('/keyed')->{status} } 1 .. 6;
    is_deeply(\@anon, [200, 200, 200, 200, 200, 429], 'without the header: one shared bucket of 5');
    is(get('/keyed', 'X-Api-Key' => 'gamma')->{status}, 200, 'a key still passes while the anonymous bucket is empty');
    my $long = 'k' x 4000;
    my @l = map { get('/keyed', 'X-Api-Key' => $long)->{status} } 1 .. 6;
    is_deeply(\@l, [200, 200, 200, 200, 200, 429], 'a 4000-byte key is limited like any other');
    is(get('/keyed', 'X-Api-Key' => substr($long, 0, 3999) . 'x')->{status}, 200, 'one differing in its last byte is another key');
};

subtest 'an empty bucket fills again: requests pass after the refill' => sub {
    my ($first, $refused);
    $first = get('/quick', 'X-Api-Key' => 'q')->{status};
    # 2/s with a burst of 1: requests sent back to back find the bucket empty unless 500 ms went by in between
    for (1 .. 50) {
        my $r = get('/quick', 'X-Api-Key' => 'q');
        if ($r->{status} == 429) { $refused = $r; last }
    }
    is($first, 200, 'the first passes');
    ok($refused, 'back-to-back requests are refused') or return;
    is($refused->{headers}{'retry-after'}, '1', 'Retry-After: at most 500 ms, rounded up to 1');
    my $t0 = time;
    ok(wait_until(sub { get('/quick', 'X-Api-Key' => 'q')->{status} == 200 }, 5), 'a request passes again once a token is back');
    ok(time - $t0 < 3, 'within the 500 ms refill, with margin (' . sprintf('%.2f', time - $t0) . ' s)');
};

subtest 'a refused request takes no max_inflight slot' => sub {
    # one thread (a slot is released once its answer is handed over, which two threads can race a sequential client
    # to), max_inflight: 1; /slow holds the one slot for 1.5 s
    my $a2 = empty_port();
    my $gw2 = spawn_conflux(<<"EOF");
admin: 127.0.0.1:$a2
threads: 1
limits: { max_inflight: 1 }
backends:
  svc: { url: "http://127.0.0.1:$m", timeout: 5s }
routes:
  - path: /once
    rate_limit: { rate: 1/h, burst: 1, key: client }
    calls: [{ name: user, backend: svc, path: "/users/once" }]
  - path: /slow
    calls: [{ name: slow, backend: svc, path: /slow }]
  - path: /free
    calls: [{ name: user, backend: svc, path: "/users/free" }]
EOF
    is(http_get($gw2->url('/once'))->{status}, 200, 'the one token of /once is taken');
    my $slow = background(sub { http_get($gw2->url('/slow'))->{status} });
    ok(wait_until(sub { $gw2->metric('conflux_inflight_requests') == 1 }, 5), 'the slow request holds the only slot');
    is(http_get($gw2->url('/free'))->{status}, 503, 'an unlimited route is refused with 503 meanwhile');
    is(http_get($gw2->url('/once'))->{status}, 429, 'an empty bucket answers 429, not 503: the rate check comes first');
    is($gw2->metric('conflux_inflight_requests'), 1, 'still one request in flight');
    is($slow->wait, 200, 'the slow request ends well');
    is($gw2->metric('conflux_rate_limited_total{route="/once"}'), 1, 'the 429 is counted');
    $gw2->stop;
};

subtest 'the client address on a proxy route' => sub {
    $mock->reset;
    my @r = map { get('/px/users/7') } 1 .. 3;
    is_deeply([map { $_->{status} } @r], [200, 200, 429], 'burst 2 per client address');
    is($r[0]{headers}{ratelimit}, '"default";r=1;t=3600', 'a proxied answer carries RateLimit');
    is($r[0]{headers}{'ratelimit-policy'}, '"default";q=1;w=3600', 'and RateLimit-Policy');
    is(get('/px/users/7', 'X-Forwarded-For' => '203.0.113.9')->{status}, 429, 'X-Forwarded-For changes nothing');
    is($mock->stub_count('GET /users/{id}'), 2, 'the refused ones were not proxied');
};

subtest 'metrics and the access log' => sub {
    my $mx = $gw->metrics;
    is($mx->{'conflux_rate_limited_total{route="/keyed"}'}, 6, 'conflux_rate_limited_total of /keyed: 3 (burst) + 1 (alpha) + 1 (none) + 1 (long)');
    is($mx->{'conflux_rate_limited_total{route="/px/{rest*}"}'}, 2, 'of the proxy route: 2');
    is($mx->{'conflux_rate_limit_keys{route="/keyed"}'}, 7, 'keys of /keyed: alpha, beta, Alpha, none, gamma, two long');
    ok(!exists $mx->{'conflux_rate_limited_total{route="/free"}'}, 'no series for a route without a rate limit');
    my @lines;
    wait_until(sub { @lines = grep { /"route":"\/keyed"/ } split /\n/, slurp($log); (grep { /"status":429/ } @lines) >= 6 }, 5);
    my @l429 = grep { $_->{status} == 429 } map { $json->decode($_) } @lines;
    is(scalar(@l429), 6, 'the access log has the 429s of /keyed (' . scalar(@l429) . ')');
    is_deeply($l429[0]{calls} // [], [], 'with no call');
};

subtest '-t refuses bad rate_limit values with file:line:col' => sub {
    my $file = tmpdir() . "/ratelimit-check-$$.yaml";
    for my $case (['{ rate: 100/s, key: jwt.sub }', qr/:7:\d+: routes\[0\]\.rate_limit\.key: jwt\.sub needs the route's token: add auth/, 'jwt.sub without auth'],
                  ['{ rate: 100/d, key: client }', qr/:7:\d+: routes\[0\]\.rate_limit\.rate: expected a rate such as 100\/s/, 'a bad unit'],
                  ['{ rate: 2000000/s, key: client }', qr/rate_limit\.rate: the count must be between 1 and 1000000/, 'too large a count'],
                  ['{ rate: 10/s, burst: 0, key: client }', qr/rate_limit\.burst/, 'burst 0'],
                  ['{ rate: 10/s }', qr/routes\[0\]\.rate_limit: needs key:/, 'no key'],
                  ['{ key: client }', qr/routes\[0\]\.rate_limit: needs rate:/, 'no rate'],
                  ['{ rate: 10/s, key: "header.X Y" }', qr/rate_limit\.key: expected client, header\.NAME/, 'a bad header name'],
                  ['{ rate: 10/s, key: client, brust: 3 }', qr/rate_limit: unknown key "brust"/, 'an unknown key'],
                  ['100/s', qr/routes\[0\]\.rate_limit: expected \{rate: 100\/s/, 'a scalar']) {
        my ($rl, $re, $name) = @$case;
        write_file($file, <<"EOF");
listen: [{ host: 127.0.0.1, port: 1 }]
backends:
  svc: { url: "http://127.0.0.1:$m" }
routes:
  - path: /a
    calls: [{ name: a, backend: svc, path: "/a" }]
    rate_limit: $rl
EOF
        my $r = run_cmd([bindir() . '/conflux', '-t', '-c', $file]);
        is($r->{code}, 1, "$name: exit 1");
        like($r->{out} . $r->{err}, $re, "$name: the message") or diag $r->{out} . $r->{err};
    }
};

subtest '--explain shows the policy' => sub {
    my $r = run_cmd([bindir() . '/conflux', '--explain', '-c', $gw->{config}]);
    like($r->{out}, qr{route /keyed .*\n  rate_limit: 1/m, burst 5, by header x-api-key, before max_inflight; 131072 keys at most}, '/keyed');
    like($r->{out}, qr{route /px/\{rest\*\} .*\n  rate_limit: 1/h, burst 2, by client address}, 'the proxy route');
};

subtest 'a reload applies a changed policy' => sub {
    (my $changed = slurp($gw->{config})) =~ s/burst: 5, key: header/burst: 3, key: header/ or die;
    write_file($gw->{config}, $changed);
    $gw->signal('HUP');
    ok(wait_until(sub { $gw->log_text =~ /^conflux: reloaded /m }, 10), 'reloaded') or diag($gw->log_text);
    my @r = map { get('/keyed', 'X-Api-Key' => 'alpha') } 1 .. 4;
    is_deeply([map { $_->{status} } @r], [200, 200, 200, 429], 'alpha starts afresh with the new burst of 3');
    is($r[0]{headers}{ratelimit}, '"default";r=2;t=60', 'RateLimit follows the new policy');
};

$gw->stop;
done_testing;
