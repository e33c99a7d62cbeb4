# SIGHUP: reloads under load lose nothing, a bad file keeps the old config, in-flight requests finish on theirs.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;
use Time::HiRes qw(time);

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /v/{n}
    body: '{"v": {n}}'
    delay: 5ms
  - path: /old
    body: '{"v": "old"}'
    delay: 1s
  - path: /new
    body: '{"v": "new"}'
EOF
my $m = $mock->port;
my $port = empty_port();

sub config {
    my (%o) = @_;
    my $threads = $o{threads} // 2;
    my $slow = $o{slow} // '/old';
    my $n = $o{n} // 1;
    my $lport = $o{port} // $port;
    return <<"EOF";
listen:
  - host: 127.0.0.1
    port: $lport
threads: $threads
backends:
  svc: { url: "http://127.0.0.1:$m", timeout: 3s }
routes:
  - path: /load
    calls: [{ name: a, backend: svc, path: "/v/$n" }]
  - path: /slow
    calls: [{ name: a, backend: svc, path: "$slow" }]
EOF
}

my $gw = spawn_conflux(config());
my $file = $gw->{config};

# waits until the log holds `n` lines matching `re`; returns how many it holds
sub wait_log {
    my ($re, $n, $timeout) = @_;
    wait_until(sub { $gw->log_count($re) >= $n }, $timeout // 5);
    return $gw->log_count($re);
}

subtest '20 reloads during a load run: no failed request' => sub {
    # a load child: curl batches of 16 concurrent requests (one connection each) until told to stop
    my $stopfile = tmpdir() . "/stop-load";
    unlink $stopfile;
    $mock->reset;
    my $load = background(sub {
        my %count;
        my $deadline = time + 30;
        while (!-e $stopfile && time < $deadline) {
            my ($res) = http_parallel(16, $gw->url('/load'));
            $count{$_->{status}}++ for @$res;
        }
        return \%count;
    });
    my $before = $gw->log_count(qr/conflux: reloaded /);
    ok(wait_until(sub { $mock->stats->{total} >= 16 }, 10), 'the load runs');
    for my $i (1 .. 20) {
        my $n = $i % 2 ? 2 : 1;
        write_file($gw->{config}, config(n => $n));
        $gw->signal('HUP');
        is(wait_log(qr/conflux: reloaded /, $before + $i), $before + $i, "reload $i applied") or last;
        # the load goes on under each config before the next reload: its newest upstream request is /v/$n
        ok(wait_until(sub { ($mock->last_request // {})->{path} eq "/v/$n" }, 10), "reload $i: requests run on it") or last;
    }
    write_file($stopfile, '');
    my %count = %{ $load->wait };
    my $total = 0;
    $total += $_ for values %count;
    cmp_ok($total, '>=', 100, "$total requests ran during the reloads");
    is_deeply([keys %count], ['200'], 'every one answered 200') or diag explain \%count;
    is(http_get($gw->url('/load'))->{body}, '{"a":{"v":1}}', 'the last config is live');
};

subtest 'a bad file keeps the old config and says where' => sub {
    write_file($gw->{config}, config(n => 2) . "  - path: /broken\n    calls: [{ name: a, backend: nope, path: /x }]\n");
    $gw->signal('HUP');
    ok(wait_log(qr/reload rejected/, 1), 'rejected');
    like($gw->log_text, qr/reload rejected, keeping the running config: \S+:\d+:\d+: routes\[2\]\.calls\[0\]\.backend/,
         'the message has file:line:col and the key');
    is(http_get($gw->url('/load'))->{body}, '{"a":{"v":1}}', 'still serving the old config');
    is(http_get($gw->url('/broken'))->{status}, 404, 'the bad route is not live');
};

subtest 'listener changes are refused: they take a restart' => sub {
    write_file($gw->{config}, config(n => 2, port => empty_port()));
    $gw->signal('HUP');
    ok(wait_log(qr/listen changed; that takes a restart/, 1), 'refused with a clear message');
    write_file($gw->{config}, config(n => 2, threads => 1));
    $gw->signal('HUP');
    ok(wait_log(qr/threads changed; that takes a restart/, 1), 'threads too');
    is(http_get($gw->url('/load'))->{body}, '{"a":{"v":1}}', 'still serving the old config');
};

subtest 'a request in flight finishes on the config it started with' => sub {
    my $before = $gw->log_count(qr/conflux: reloaded /);
    $mock->reset;
    my $old = background(sub { my $r = http_get($gw->url('/slow')); "$r->{status} $r->{body}" });
    ok(wait_until(sub { @{ $mock->journal('/old') } == 1 }, 5), 'the request is at the 1 s upstream');
    write_file($gw->{config}, config(slow => '/new'));
    $gw->signal('HUP');
    is(wait_log(qr/conflux: reloaded /, $before + 1), $before + 1, 'reloaded');
    my $r = http_get($gw->url('/slow'));
    is($r->{body}, '{"a":{"v":"new"}}', 'a new request gets the new route');
    cmp_ok($r->{elapsed}, '<', 0.5, 'at once');
    is($old->wait, '200 {"a":{"v":"old"}}', 'the old request got the old answer');
};

is($gw->stop, 0, 'exit 0');
done_testing;
