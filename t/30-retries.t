# Retries within a budget and the deadline (docs/http.md, "Retries and hedging"): what is retried, where, and how much.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use JSON::PP ();
use Test::More;

# Two servers of one backend: "a" fails /r with 503, "b" answers it. Both answer /ok; /once fails the first time only.
my $a = spawn_mock(<<'EOF');
stubs:
  - path: /r
    status: 503
    body: '{"server": "a"}'
  - path: /ok
    body: '{"ok": true}'
  - path: /once
    body: '{"once": true}'
    sequence: [503, 200]
  - path: /always503
    status: 503
    body: '{"busy": true}'
  - path: /late
    method: '*'
    status: 503
    body: '{"late": true}'
    delay: 240ms
    sequence: [503, 200]
  - path: /dead
    status: 503
    body: '{"dead": true}'
    delay: 300ms
  - path: /pay
    method: POST
    status: 201
    body: '{"paid": true}'
    sequence: [503, 201]
  - path: /hangfirst
    body: '{"second": true}'
    sequence: [hang, 200]
  - path: /put
    method: PUT
    body: '{"put": true}'
    sequence: [503, 200]
EOF
my $b = spawn_mock(<<'EOF');
stubs:
  - path: /r
    body: '{"server": "b"}'
  - path: /ok
    body: '{"ok": true}'
EOF
my ($ap, $bp) = ($a->port, $b->port);
my $admin = empty_port();
my $log = tmpdir() . '/access.log';

my $gw = spawn_conflux(<<"EOF");
threads: 1
admin: 127.0.0.1:$admin
access_log: "$log"
backends:
  once:
    url: http://127.0.0.1:$ap
    retries: 1
  two:
    servers: [http://127.0.0.1:$ap, http://127.0.0.1:$bp]
    retries: 1
  plain:
    url: http://127.0.0.1:$ap
  pay:
    url: http://127.0.0.1:$ap
    retries: 2
  dead:
    url: http://127.0.0.1:$ap
    retries: 3
  pertry:
    url: http://127.0.0.1:$ap
    retries: 1
    timeout: 3s
    per_try_timeout: 200ms
routes:
  - { path: /pertry, calls: [{ name: p, backend: pertry, path: /hangfirst }] }
  - { path: /notry, calls: [{ name: p, backend: once, path: /hangfirst, timeout: 600ms }] }
  - { path: /once, calls: [{ name: flaky, backend: once, path: /once }] }
  - { path: /plain, calls: [{ name: flaky, backend: plain, path: /once }] }
  - { path: /always, calls: [{ name: busy, backend: once, path: /always503 }] }
  - { path: /two, calls: [{ name: flaky, backend: two, path: /r }, { name: other, backend: two, path: /ok }] }
  - path: /pay
    methods: [POST]
    proxy: pay
  - path: /put
    methods: [PUT]
    proxy: pay
  - path: /late
    deadline: 250ms
    proxy: once
  - { path: /dead, calls: [{ name: dead, backend: dead, path: /dead }] }
  - { path: /cached, calls: [{ name: c, backend: once, path: /once, cache: 30s }] }
EOF

sub count_path { my ($mock, $path) = @_; return scalar @{ $mock->journal($path) } }

subtest 'a transient 503 is retried once and the call succeeds' => sub {
    $a->reset;
    my $r = http_get($gw->url('/once'));
    is $r->{status}, 200, 'the answer';
    my $doc = decode_json_ok($r->{body});
    is_deeply $doc, { flaky => { once => JSON::PP::true } }, 'the second attempt answered the call';
    like $r->{headers}{'server-timing'}, qr/^flaky;dur=[0-9.]+;desc="ok";attempts=2,/, 'Server-Timing counts the attempts';
    is $r->{headers}{'conflux-complete'}, 'true', 'complete';
    is count_path($a, '/once'), 2, 'two upstream requests';
    is $gw->metric('conflux_upstream_attempts_total{backend="once"}'), 2, 'two attempts in /metrics';
    is $gw->metric('conflux_upstream_retries_total{backend="once"}'), 1, 'one retry in /metrics';
    ok wait_until(sub { -s $log && slurp($log) =~ /"name":"flaky".*?"attempts":2/ }), 'the access log has the attempts';
};

subtest 'a cached call\'s upstream request is retried too, and its attempts are the call\'s' => sub {
    $a->reset;
    my $r = http_get($gw->url('/cached'));
    is $r->{status}, 200, 'the answer';
    like $r->{headers}{'server-timing'}, qr/^c;dur=[0-9.]+;desc="miss";attempts=2,/, 'a miss that took two attempts';
    like $r->{headers}{'cache-status'}, qr/fwd-status=200; stored/, 'the retry\'s answer was stored';
    $r = http_get($gw->url('/cached'));
    like $r->{headers}{'server-timing'}, qr/^c;dur=[0-9.]+;desc="hit",/, 'then a hit, with no attempt';
    is count_path($a, '/once'), 2, 'two upstream requests in all';
};

subtest 'a backend without retries does not retry' => sub {
    $a->reset;
    my $r = http_get($gw->url('/plain'));
    like $r->{headers}{'server-timing'}, qr/^flaky;dur=[0-9.]+;desc="status_503",/, 'the call failed with the 503';
    is count_path($a, '/once'), 1, 'one upstream request';
};

subtest 'every attempt failing: the last one is the reason' => sub {
    $a->reset;
    my $r = http_get($gw->url('/always'));
    like $r->{headers}{'server-timing'}, qr/^busy;dur=[0-9.]+;desc="status_503";attempts=2,/, 'status_503 after two attempts';
    like $r->{headers}{'proxy-status'}, qr/received-status=503/, 'Proxy-Status names the last answer';
    is count_path($a, '/always503'), 2, 'two upstream requests';
};

subtest 'the retry goes to the other server' => sub {
    $a->reset;
    $b->reset;
    # the two calls take "a" then "b"; round robin alone would send flaky's retry back to "a"
    my $r = http_get($gw->url('/two'));
    is $r->{status}, 200, 'the answer';
    my $doc = decode_json_ok($r->{body});
    is $doc->{flaky}{server}, 'b', 'the retry was answered by the other server';
    is count_path($a, '/r'), 1, 'one request to the failing server';
    is count_path($b, '/r'), 1, 'one to the other';
};

subtest 'POST is never retried; PUT is' => sub {
    $a->reset;
    my $r = http_request('POST', $gw->url('/pay'), { 'Content-Type' => 'application/json' }, '{"amount": 1}');
    is $r->{status}, 503, 'the POST got the upstream 503';
    is count_path($a, '/pay'), 1, 'one upstream request';
    $r = http_request('PUT', $gw->url('/put'), { 'Content-Type' => 'application/json' }, '{"a": 1}');
    is $r->{status}, 200, 'the PUT was retried';
    my $j = $a->journal('/put');
    is scalar @$j, 2, 'two upstream requests';
    is $j->[1]{body}, '{"a": 1}', 'the retry carries the body';
};

subtest 'no retry starts after the deadline' => sub {
    $a->reset;
    # the 503 comes after 240ms; the shortest backoff is 15ms, so a retry would start after the 250ms deadline
    my $r = http_get($gw->url('/late'));
    # 503: the first attempt's answer, in the 10ms before the deadline; on a busy machine it may come after the
    # deadline, which answers 504: either way no retry may start
    like $r->{status}, qr/^50[34]$/, "the first attempt's answer, or the deadline's ($r->{status})";
    is count_path($a, '/late'), 1, 'no second upstream request';
};

subtest 'the retry budget caps attempts when every call fails' => sub {
    $a->reset;
    my $before = $gw->metrics;
    # 20 calls at once to a backend that fails everything after 300ms, with retries: 3: without a budget that is 80
    # upstream requests; the budget lets max(3, 20% of the calls in flight) retries be in flight
    my ($res) = http_parallel(20, $gw->url('/dead'));
    is scalar(grep { $_->{status} == 200 } @$res), 20, 'every client got its answer';
    my $n = count_path($a, '/dead');
    cmp_ok $n, '>=', 20, "every call made its first attempt ($n requests)";
    cmp_ok $n, '<=', 30, "the budget kept it under 1.5 times the calls ($n requests, 80 without it)";
    my $after = $gw->metrics;
    cmp_ok delta($before, $after, 'conflux_retry_budget_exhausted_total{backend="dead"}'), '>', 0,
        'calls that found the budget spent are counted';
};

subtest 'per_try_timeout: an attempt that hangs is cut and retried, well within the call\'s timeout' => sub {
    $a->reset;
    my $r = http_get($gw->url('/pertry'));
    is $r->{status}, 200, 'the answer';
    is_deeply decode_json_ok($r->{body}), { p => { second => JSON::PP::true } }, 'the second attempt answered';
    like $r->{headers}{'server-timing'}, qr/^p;dur=[0-9.]+;desc="ok";attempts=2,/, 'two attempts';
    cmp_ok $r->{elapsed}, '>=', 0.19, sprintf('the first waited its 200ms (%.2fs)', $r->{elapsed});
    cmp_ok $r->{elapsed}, '<', 2, 'not the 3s call timeout';
    is count_path($a, '/hangfirst'), 2, 'two upstream requests';
    # without it, a timeout ends the call: nothing is left to retry in
    $a->reset;
    $r = http_get($gw->url('/notry'));
    like $r->{headers}{'server-timing'}, qr/^p;dur=[0-9.]+;desc="timeout",/, 'without per_try_timeout: the call times out';
    is count_path($a, '/hangfirst'), 1, 'after one upstream request';
};

subtest 'per_try_timeout is refused without retries, or when not shorter than timeout' => sub {
    for my $c (["retries: 0\n    per_try_timeout: 100ms", qr/per_try_timeout needs retries/],
               ["retries: 1\n    timeout: 1s\n    per_try_timeout: 1s", qr/per_try_timeout must be shorter than the backend's timeout \(1000ms\)/]) {
        my $file = write_file(tmpdir() . '/pertry.yaml', "listen: [{port: 1}]\nbackends:\n  b:\n    url: http://127.0.0.1:1\n    $c->[0]\n"
            . "routes:\n  - { path: /x, calls: [{ name: x, backend: b, path: /x }] }\n");
        my $res = run_cmd([bindir() . '/conflux', '-t', '-c', $file]);
        is $res->{code}, 1, 'exit 1';
        like $res->{err}, $c->[1], 'says why' or diag $res->{err};
        like $res->{err}, qr/pertry\.yaml:\d+:\d+: backends\.b\.per_try_timeout: /, 'where';
    }
};

subtest '--explain shows the retry policy' => sub {
    my $r = run_cmd([bindir() . '/conflux', '--explain', '-c', $gw->{config}]);
    is $r->{code}, 0, 'exit 0';
    like $r->{out}, qr/retries 1 on connect_failed, reset, status_502, status_503, status_504/, 'the retries and retry_on';
    like $r->{out}, qr/retry budget: max\(3, 20% of the calls in flight\)/, 'the budget';
    like $r->{out}, qr/each attempt at most 200ms \(per_try_timeout/, 'per_try_timeout';
};

done_testing;
