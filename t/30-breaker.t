# Circuit breakers per server: failed attempts in a row open a server's breaker, which takes it out of the rotation;
# with every server out, calls fail with circuit_open at once, without touching the network; after open_for one probe
# goes through: its success closes the breaker, its failure reopens it for twice as long. State is per process.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;
use Time::HiRes qw(time);

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /data
    status: 503
    body: '{"down": true}'
EOF
my $m = $mock->port;
my $server = "http://127.0.0.1:$m";

# replaces the mock's /data stub: status 200 or 503
sub data_status {
    my ($status) = @_;
    my $r = http_request('POST', $mock->url('/__mock/stubs'), { 'Content-Type' => 'application/json' },
        qq({"path": "/data", "status": $status, "body": "{\\"s\\": $status}"}));
    die "cannot replace the stub: $r->{status} $r->{body}" unless $r->{status} == 200;
}

sub sent { $mock->stub_count('GET /data') }

# conflux's own time for a request, from Server-Timing's total, in milliseconds
sub total_ms {
    my ($r) = @_;
    return ($r->{headers}{'server-timing'} // '') =~ /total;dur=([\d.]+)/ ? $1 : 9e9;
}

my $admin = empty_port();
my $dead = empty_port();
my $gw = spawn_conflux(<<"EOF");
threads: 2
admin: 127.0.0.1:$admin
backends:
  svc:
    url: $server
    circuit_breaker: { failures: 3, open_for: 500ms }
  pair:
    servers: [$server, http://127.0.0.1:$dead]
    connect_timeout: 200ms
    circuit_breaker: { failures: 2, open_for: 10s }
routes:
  - path: /one
    calls:
      - { name: data, backend: svc, path: /data, required: true }
  - path: /px/{rest*}
    proxy: svc
  - path: /pair
    calls:
      - { name: data, backend: pair, path: /data, required: true }
EOF
my $state = qq(conflux_upstream_breaker_state{backend="svc",server="$server"});

subtest 'three 503s in a row open the breaker; then circuit_open at once, nothing sent' => sub {
    is(metric($admin, $state), 0, 'closed at first');
    for my $i (1 .. 3) {
        my $r = http_get($gw->url('/one'));
        is($r->{status}, 502, "attempt $i: 502");
        like($r->{body}, qr/"error":\s*"status_503"/, "attempt $i: status_503");
    }
    is(sent(), 3, 'three requests reached the server');
    is(metric($admin, $state), 1, 'the breaker is open');
    is(metric($admin, qq(conflux_upstream_breaker_opens_total{backend="svc",server="$server"})), 1, 'opened once');
    like($gw->log_text, qr/backend svc: server \Q$server\E: 3 failed attempts in a row; out of rotation for 500ms/,
         'the log says so');
    # both threads: the breaker is the process's
    my @fast;
    for my $i (1 .. 6) {
        my $r = http_get($gw->url('/one'));
        is($r->{status}, 502, "call $i while open: 502");
        like($r->{body}, qr/"error":\s*"circuit_open"/, "call $i: circuit_open");
        like($r->{headers}{'proxy-status'} // '', qr/error=destination_unavailable/, "call $i: Proxy-Status destination_unavailable");
        push @fast, total_ms($r);
    }
    my ($slowest) = sort { $b <=> $a } @fast;
    # a sanitized build runs several times slower: the bound is 1 ms for the build users run
    my $bound = $ENV{CONFLUX_SANITIZED} ? 5 : 1;
    cmp_ok($slowest, '<', $bound, "conflux's own time for a circuit_open answer is under $bound ms (slowest of 6: ${slowest} ms)");
    my $r = http_get($gw->url('/px/data'));
    is($r->{status}, 502, 'a proxy route to the backend: 502');
    like($r->{body}, qr/"error":\s*"circuit_open"/, 'circuit_open');
    is(sent(), 3, 'none of them reached the server');
    cmp_ok(metric($admin, 'conflux_upstream_results_total{backend="svc",result="circuit_open"}'), '>=', 6, 'counted in /metrics');
};

subtest 'a failed probe reopens it for twice as long' => sub {
    my $t0 = time;
    ok(wait_until(sub { http_get($gw->url('/one')); sent() > 3 }, 5), 'after open_for one probe went through');
    is(sent(), 4, 'exactly one');
    my $probed = time;
    is(metric($admin, $state), 1, 'it failed (503): open again');
    # open_for doubled to 1s: a request 0.6s after the probe (past the first period) is still refused
    Time::HiRes::sleep(0.6 - (time - $probed)) if time - $probed < 0.6;
    my $r = http_get($gw->url('/one'));
    like($r->{body}, qr/"circuit_open"/, 'still open 0.6s after the failed probe: the period doubled');
    is(sent(), 4, 'and nothing was sent');
};

subtest 'a successful probe closes it' => sub {
    data_status(200);
    ok(wait_until(sub { http_get($gw->url('/one'))->{status} == 200 }, 5), 'the probe succeeded once the period passed');
    is(metric($admin, $state), 0, 'closed');
    like($gw->log_text, qr/server \Q$server\E: the probe succeeded; back in rotation/, 'the log says so');
    my $before = sent();
    is(http_get($gw->url('/one'))->{status}, 200, 'calls go through again') for 1 .. 3;
    is(sent(), $before + 3, 'each reached the server');
};

subtest 'a dead server of two: out of rotation after two failures, no call fails after that' => sub {
    my $dead_state = qq(conflux_upstream_breaker_state{backend="pair",server="http://127.0.0.1:$dead"});
    my $failed = 0;
    my $n = 0;
    until (metric($admin, $dead_state) == 1 || $n > 20) {
        $failed++ if http_get($gw->url('/pair'))->{status} != 200;
        $n++;
    }
    is(metric($admin, $dead_state), 1, "the dead server's breaker opened after $n calls ($failed failed)");
    cmp_ok($failed, '<=', 4, 'at most two failures per thread before that');
    my @status = map { http_get($gw->url('/pair'))->{status} } 1 .. 20;
    is(scalar(grep { $_ != 200 } @status), 0, 'then 20 calls in a row all succeed on the live server');
    is(metric($admin, qq(conflux_upstream_breaker_state{backend="pair",server="$server"})), 0, "the live server's is closed");
};

done_testing;
