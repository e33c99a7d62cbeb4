# threads: N event loops, each accepting on its own SO_REUSEPORT socket; all of them serve.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /slow/{id}
    body: '{"id": "{id}"}'
    delay: 300ms
  - path: /fast/{id}
    body: '{"id": "{id}"}'
EOF
my $m = $mock->port;

my $routes = <<"EOF";
backends:
  svc: { url: "http://127.0.0.1:$m", timeout: 2s }
routes:
  - path: /s/{id}
    calls: [{ name: one, backend: svc, path: "/slow/{id}" }]
  - path: /f/{id}
    calls: [{ name: one, backend: svc, path: "/fast/{id}" }]
EOF

sub comm {
    my ($pid, $tid) = @_;
    open my $fh, '<', "/proc/$pid/task/$tid/comm" or return '';
    chomp(my $n = <$fh> // '');
    return $n;
}

# the names of conflux's event-loop threads (pthread_setname_np "conflux-wN")
sub worker_threads {
    my $pid = shift;
    return sort grep { /^conflux-w\d+$/ } map { m{/task/(\d+)$} ? comm($pid, $1) : () } glob "/proc/$pid/task/*";
}

# Context switches of each event-loop thread. A loop that serves sleeps in epoll_wait and wakes for each batch of
# events, a switch each time; an idle loop wakes once a second. Unlike CPU time (counted in 10 ms ticks, so a thread
# that did a little work may show none), this counts every wakeup.
sub worker_switches {
    my $pid = shift;
    my %t;
    for my $dir (glob "/proc/$pid/task/*") {
        my ($tid) = $dir =~ m{/task/(\d+)$} or next;
        my $name = comm($pid, $tid);
        next unless $name =~ /^conflux-w/;
        my $status = eval { slurp("$dir/status") } // next;
        my ($v) = $status =~ /^voluntary_ctxt_switches:\s+(\d+)/m;
        my ($n) = $status =~ /^nonvoluntary_ctxt_switches:\s+(\d+)/m;
        $t{$name} = ($v // 0) + ($n // 0);
    }
    return \%t;
}

# the listening sockets are open before the threads start (and name themselves): wait for the names
sub wait_workers {
    my ($pid, $n) = @_;
    wait_until(sub { my @w = worker_threads($pid); @w == $n }, 10);
    return worker_threads($pid);
}

subtest 'threads: 2 runs two event loops that both serve' => sub {
    my $gw = spawn_conflux("threads: 2\n$routes");
    is_deeply([wait_workers($gw->pid, 2)], ['conflux-w0', 'conflux-w1'], 'two event-loop threads (/proc/PID/task/*/comm)');
    ok(wait_until(sub { $gw->log_text =~ /serving with 2 threads/ }, 10), 'the log says so');

    my ($res, $wall) = http_parallel(60, $gw->url('/s/7'));
    is(scalar(@$res), 60, '60 answers');
    is(scalar(grep { $_->{status} == 200 } @$res), 60, 'all 200');
    # one at a time they would take 18 s, one at a time per loop 9 s; 6 s leaves room for a sanitizer on a busy machine
    cmp_ok($wall, '<', 6, sprintf('60 concurrent 300ms requests in %.2fs', $wall));

    # both loops work: the kernel spreads the connections of a burst over both listening sockets, and each loop
    # wakes many times to serve its share (an idle one wakes about once a second)
    my $before = worker_switches($gw->pid);
    for (1 .. 4) {
        my ($r) = http_parallel(150, $gw->url('/f/x'));
        is(scalar(grep { $_->{status} == 200 } @$r), 150, 'burst: all 200');
    }
    my $after = worker_switches($gw->pid);
    my @busy = grep { $after->{$_} - ($before->{$_} // 0) >= 20 } keys %$after;
    is(scalar(@busy), 2, 'both event-loop threads woke to serve (20 or more context switches each)')
        or diag explain { before => $before, after => $after };
    is($gw->stop, 0, 'exit 0');
};

subtest 'threads: 1 runs one event loop' => sub {
    my $gw = spawn_conflux("threads: 1\n$routes");
    is_deeply([wait_workers($gw->pid, 1)], ['conflux-w0'], 'one event-loop thread');
    is(http_get($gw->url('/s/1'))->{status}, 200, 'serves');
};

subtest 'the default is one thread per CPU' => sub {
    my $gw = spawn_conflux($routes);
    my ($n) = run_cmd(['nproc'])->{out} =~ /(\d+)/;
    $n = 64 if $n > 64;
    my @w = wait_workers($gw->pid, $n);
    is(scalar(@w), $n, "$n threads");
};

subtest 'max_inflight bounds the whole process, not each thread' => sub {
    my $gw = spawn_conflux("threads: 2\nlimits: { max_inflight: 4 }\n$routes");
    my ($res) = http_parallel(12, $gw->url('/s/m'));
    my $ok = grep { $_->{status} == 200 } @$res;
    my $busy = grep { $_->{status} == 503 } @$res;
    cmp_ok($ok, '<=', 4, "at most 4 served at once ($ok)");
    cmp_ok($ok, '>=', 1, 'some served');
    is($ok + $busy, 12, 'the others got 503');
};

subtest 'max_inflight: 1 with two threads: requests one after another all pass (a slot is free before the answer)' => sub {
    # the answer used to be sent before its slot was given back: the client's next request, accepted by the other
    # thread in that gap, found the one slot taken and got 503
    my $gw = spawn_conflux("threads: 2\nlimits: { max_inflight: 1 }\n$routes");
    my @status = map { http_get($gw->url('/f/x'))->{status} } 1 .. 300; # a new connection each
    is(scalar(grep { $_ == 200 } @status), 300, '300 of 300 sequential requests: 200') or diag "@status";
};

subtest 'threads: out of range is refused' => sub {
    my $file = write_file(tmpdir() . "/t65.yaml", "listen: [{port: 1}]\nthreads: 65\n$routes");
    my $r = run_cmd([bindir() . '/conflux', '-t', '-c', $file]);
    my $out = $r->{err};
    is($r->{code}, 1, 'exit 1');
    like($out, qr/t65\.yaml:2:10: threads: 65 is out of range \(1 to 64\)/, 'file:line:col and the bounds') or diag $out;
};

done_testing;
