# SIGHUP: reloads under load lose nothing, a bad file keeps the old config, in-flight requests finish on theirs.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;
use POSIX ();
use Time::HiRes qw(time sleep);

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

# waits until the log holds `n` lines matching `re`
sub wait_log {
    my ($re, $n, $timeout) = @_;
    my $deadline = time + ($timeout // 5);
    while (time < $deadline) {
        my $count = () = $gw->log_text =~ /$re/g;
        return $count if $count >= $n;
        sleep 0.02;
    }
    my $count = () = $gw->log_text =~ /$re/g;
    return $count;
}

subtest '20 reloads during a load run: no failed request' => sub {
    # a load child: curl batches of 16 concurrent requests (one connection each) until told to stop
    my $stopfile = tmpdir() . "/stop-load";
    my $outfile = tmpdir() . "/load.out";
    unlink $stopfile;
    my $pid = fork // die;
    if ($pid == 0) {
        my %count;
        my $deadline = time + 20;
        while (!-e $stopfile && time < $deadline) {
            my ($res) = http_parallel(16, $gw->url('/load'));
            $count{$_->{status}}++ for @$res;
        }
        write_file($outfile, join("\n", map { "$_ $count{$_}" } sort keys %count) . "\n");
        POSIX::_exit(0); # not exit: the guards' END blocks belong to the parent
    }
    my $before = () = $gw->log_text =~ /conflux: reloaded /g;
    sleep 0.2;
    for my $i (1 .. 20) {
        write_file($gw->{config}, config(n => $i % 2 ? 2 : 1));
        $gw->signal('HUP');
        is(wait_log(qr/conflux: reloaded /, $before + $i), $before + $i, "reload $i applied") or last;
        sleep 0.05;
    }
    sleep 0.2;
    write_file($stopfile, '');
    waitpid($pid, 0);
    my %count = map { split ' ' } split /\n/, do { local (@ARGV, $/) = $outfile; <> };
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
    my $before = () = $gw->log_text =~ /conflux: reloaded /g;
    my $out = tmpdir() . "/old.out";
    my $pid = fork // die;
    if ($pid == 0) {
        my $r = http_get($gw->url('/slow'));
        write_file($out, "$r->{status} $r->{body}");
        POSIX::_exit(0); # not exit: the guards' END blocks belong to the parent
    }
    sleep 0.3; # the request is at the 1s upstream now
    write_file($gw->{config}, config(slow => '/new'));
    $gw->signal('HUP');
    is(wait_log(qr/conflux: reloaded /, $before + 1), $before + 1, 'reloaded');
    my $r = http_get($gw->url('/slow'));
    is($r->{body}, '{"a":{"v":"new"}}', 'a new request gets the new route');
    cmp_ok($r->{elapsed}, '<', 0.5, 'at once');
    waitpid($pid, 0);
    is(do { local (@ARGV, $/) = $out; <> }, '200 {"a":{"v":"old"}}', 'the old request got the old answer');
};

is($gw->stop, 0, 'exit 0');
done_testing;
