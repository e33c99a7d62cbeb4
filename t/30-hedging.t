# Hedging (docs/http.md, "Retries and hedging"): a copy of a slow attempt to another server, the first answer wins and
# the other exchange is cancelled; no copy when the first answers in time.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;

# "slow" holds /h for 2s; "fast" answers it at once. Both answer /quick at once.
my $slow = spawn_mock(<<'EOF');
stubs:
  - path: /h
    body: '{"server": "slow"}'
    delay: 2s
  - path: /quick
    body: '{"server": "slow"}'
EOF
my $fast = spawn_mock(<<'EOF');
stubs:
  - path: /h
    body: '{"server": "fast"}'
  - path: /quick
    body: '{"server": "fast"}'
EOF
# a second slow server, so that a hedge of "tight" (below) is slow too and keeps its share of the budget
my $slow2 = spawn_mock(<<'EOF');
stubs:
  - path: /h
    body: '{"server": "slow2"}'
    delay: 2s
EOF
my ($sp, $fp, $s2) = ($slow->port, $fast->port, $slow2->port);
my $admin = empty_port();

my $gw = spawn_conflux(<<"EOF");
threads: 1
admin: 127.0.0.1:$admin
backends:
  hedged:
    servers: [http://127.0.0.1:$sp, http://127.0.0.1:$fp]
    timeout: 3s
    hedge_after: 50ms
  calm:
    servers: [http://127.0.0.1:$sp, http://127.0.0.1:$fp]
    hedge_after: 300ms
  pct:
    servers: [http://127.0.0.1:$sp, http://127.0.0.1:$fp]
    timeout: 3s
    hedge_after: p95
    hedge_fallback: 60ms
  tight:
    servers: [http://127.0.0.1:$sp, http://127.0.0.1:$s2]
    timeout: 3s
    hedge_after: 50ms
    retry_budget: { percent: 1, min: 1 }
routes:
  - { path: /h, calls: [{ name: h, backend: hedged, path: /h }] }
  - { path: /t, calls: [{ name: t, backend: tight, path: /h }] }
  - { path: /quick, calls: [{ name: q, backend: calm, path: /quick }] }
  - { path: /pct, calls: [{ name: p, backend: pct, path: /h }] }
EOF

subtest 'a slow attempt gets a copy on the other server, which wins; the slow one is aborted' => sub {
    $slow->reset;
    $fast->reset;
    my $r = http_get($gw->url('/h'));    # the first call of the backend goes to the first server, "slow"
    is $r->{status}, 200, 'the answer';
    my $doc = decode_json_ok($r->{body});
    is $doc->{h}{server}, 'fast', 'the copy answered';
    cmp_ok $r->{elapsed}, '<', 1.5, sprintf('without waiting for the slow server (%.3fs)', $r->{elapsed});
    like $r->{headers}{'server-timing'}, qr/^h;dur=[0-9.]+;desc="ok";attempts=2;hedged=won,/, 'Server-Timing says so';
    ok wait_until(sub { my $j = $slow->journal('/h'); @$j == 1 && $j->[0]{aborted} }),
        'the slow server saw its request aborted (the exchange was cancelled at once)';
    is scalar @{ $fast->journal('/h') }, 1, 'one request to the fast server';
    is $gw->metric('conflux_upstream_hedges_total{backend="hedged"}'), 1, 'one hedge in /metrics';
    is $gw->metric('conflux_upstream_attempts_total{backend="hedged"}'), 2, 'two attempts in /metrics';
};

subtest 'no copy when the first attempt answers in time' => sub {
    $slow->reset;
    $fast->reset;
    for (1 .. 4) {
        my $r = http_get($gw->url('/quick'));
        is $r->{status}, 200, "request $_";
        unlike $r->{headers}{'server-timing'}, qr/attempts=|hedged=/, "request $_: one attempt";
    }
    is scalar(@{ $slow->journal('/quick') }) + scalar(@{ $fast->journal('/quick') }), 4, 'four upstream requests';
    is $gw->metric('conflux_upstream_hedges_total{backend="calm"}'), 0, 'no hedge in /metrics';
};

subtest 'hedge_after: p95 goes after hedge_fallback until there are samples' => sub {
    $slow->reset;
    $fast->reset;
    my $r = http_get($gw->url('/pct'));
    is $r->{status}, 200, 'the answer';
    like $r->{headers}{'server-timing'}, qr/hedged=won/, 'a copy was sent and won';
    cmp_ok $r->{elapsed}, '<', 1.5, sprintf('within the fallback, not the slow server (%.3fs)', $r->{elapsed});
};

subtest 'hedges share the retry budget: past it no copy goes out' => sub {
    $slow->reset;
    $slow2->reset;
    # six slow calls at once; the budget allows max(1, 1% of 6) = 1 extra attempt in flight: one hedge, five refused
    my ($res) = http_parallel(6, $gw->url('/t'));
    is scalar(grep { $_->{status} == 200 } @$res), 6, 'six answers';
    is $gw->metric('conflux_upstream_hedges_total{backend="tight"}'), 1, 'one hedge went out';
    is $gw->metric('conflux_retry_budget_exhausted_total{backend="tight"}'), 5, 'five calls found the budget spent';
    is scalar(@{ $slow->journal('/h') }) + scalar(@{ $slow2->journal('/h') }), 7, 'seven upstream requests in all';
};

subtest '--explain shows the hedging policy' => sub {
    my $r = run_cmd([bindir() . '/conflux', '--explain', '-c', $gw->{config}]);
    like $r->{out}, qr/hedge after 50ms, at most 1 copy; the first answer wins/, 'a fixed delay';
    like $r->{out}, qr/hedge after p95 of recent latencies \(60ms until 100 samples\)/, 'a percentile';
};

done_testing;
