# Active health checks: a server whose checks fail `unhealthy` times in a row is taken out of the rotation (its calls
# go to the others), and put back after `healthy` passes in a row; with every server out, calls fail with
# circuit_open. Checks run off the request path: one per server per interval for the whole process.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;

my $stubs = <<'EOF';
stubs:
  - path: /healthz
    body: '{"ok": true}'
  - path: /data
    body: '{"ok": true}'
EOF
my ($a, $b) = (spawn_mock($stubs), spawn_mock($stubs));
my ($ua, $ub) = map { 'http://127.0.0.1:' . $_->port } $a, $b;

sub health_status {
    my ($mock, $status) = @_;
    my $r = http_request('POST', $mock->url('/__mock/stubs'), { 'Content-Type' => 'application/json' },
        qq({"path": "/healthz", "status": $status}));
    die "cannot replace the stub: $r->{status} $r->{body}" unless $r->{status} == 200;
}

my $admin = empty_port();
my $gw = spawn_conflux(<<"EOF");
threads: 2
admin: 127.0.0.1:$admin
backends:
  svc:
    servers: [$ua, $ub]
    health: { path: /healthz, interval: 200ms, timeout: 100ms, healthy: 2, unhealthy: 2 }
routes:
  - path: /data
    calls:
      - { name: data, backend: svc, path: /data, required: true }
EOF
sub healthy { metric($admin, qq(conflux_upstream_server_healthy{backend="svc",server="$_[0]"})) }

subtest 'checks run, one per server per interval for the process (not one per thread)' => sub {
    ok(wait_until(sub { $a->stub_count('GET /healthz') >= 3 && $b->stub_count('GET /healthz') >= 3 }), 'both servers are checked');
    $a->reset;
    ok(wait_until(sub { $a->stub_count('GET /healthz') >= 10 }, 5), 'ten more checks of one server');
    my $j = $a->journal('/healthz');
    return fail('the journal holds the checks') unless @$j >= 2;
    my $each = ($j->[-1]{time} - $j->[0]{time}) / $#$j;
    cmp_ok($each, '>', 0.15, sprintf('one check per interval (200ms) for the process: every %.0f ms, not one per thread', $each * 1000));
    cmp_ok($each, '<', 0.3, 'and none skipped');
    is(healthy($ua), 1, 'a is healthy');
    is(healthy($ub), 1, 'b is healthy');
};

subtest 'failing checks take a server out; calls go to the other' => sub {
    health_status($a, 503);
    ok(wait_until(sub { healthy($ua) == 0 }, 5), 'a is taken out');
    like($gw->log_text, qr/server \Q$ua\E: 2 health checks in a row failed; out of rotation/, 'the log says so');
    $a->reset;
    $b->reset;
    is(http_get($gw->url('/data'))->{status}, 200, 'calls succeed') for 1 .. 10;
    is($a->stub_count('GET /data'), 0, 'none reached a');
    is($b->stub_count('GET /data'), 10, 'all reached b');
};

subtest 'every server out: circuit_open without touching the network' => sub {
    health_status($b, 500);
    ok(wait_until(sub { healthy($ub) == 0 }, 5), 'b is taken out too');
    $b->reset;
    my $r = http_get($gw->url('/data'));
    is($r->{status}, 502, 'answered 502');
    like($r->{body}, qr/"error":\s*"circuit_open"/, 'circuit_open');
    is($a->stub_count('GET /data') + $b->stub_count('GET /data'), 0, 'nothing sent');
};

subtest 'passing checks put a server back' => sub {
    health_status($a, 200);
    health_status($b, 200);
    ok(wait_until(sub { healthy($ua) == 1 && healthy($ub) == 1 }, 5), 'both back');
    like($gw->log_text, qr/server \Q$ua\E: 2 health checks in a row passed; back in rotation/, 'the log says so');
    $a->reset;
    $b->reset;
    is(http_get($gw->url('/data'))->{status}, 200, 'calls succeed') for 1 .. 10;
    cmp_ok($a->stub_count('GET /data'), '>', 0, 'a gets calls again');
    cmp_ok($b->stub_count('GET /data'), '>', 0, 'b too');
};

done_testing;
