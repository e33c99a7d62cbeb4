# Client connections: the cap (limits.max_client_connections) and the pause at the fd limit. Neither spins a loop;
# both resume on their own once connections close, the cap at once.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use IO::Select;
use IO::Socket::INET;
use IO::Socket::SSL;
use Test::More;
use Time::HiRes qw(time);

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /users/{id}
    body: '{"id": "{id}"}'
  - path: /slow
    body: '{}'
    delay: 2s
EOF
my $m = $mock->port;

sub start {
    my (%o) = @_;
    my ($port, $admin) = (empty_port(), empty_port());
    my $cap = defined $o{cap} ? "limits: { max_client_connections: $o{cap} }\n" : '';
    my $file = write_file(tmpdir() . "/conflux-$port.yaml", <<"EOF");
listen:
  - host: 127.0.0.1
    port: $port
threads: 1
admin: 127.0.0.1:$admin
$cap
backends:
  svc: { url: "http://127.0.0.1:$m" }
routes:
  - path: /u/{id}
    calls: [{ name: user, backend: svc, path: "/users/{id}" }]
EOF
    my @cmd = (bindir() . '/conflux', '-c', $file);
    # dash's ulimit sets the soft and the hard limit: conflux cannot raise it back
    @cmd = ('sh', '-c', "ulimit -n $o{nofile} && exec \"\$0\" \"\$@\"", @cmd) if $o{nofile};
    my $g = spawn(name => "conflux-$port", port => $port, cmd => \@cmd);
    return ($g, $port, $admin);
}

sub connect_n {
    my ($port, $n) = @_;
    return map { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 5) // die "connect: $!" } 1 .. $n;
}

# CPU seconds (user + system) a process has used
sub cpu_seconds {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return undef;
    my @f = split ' ', (<$fh> =~ s/^.*\) //r);
    return ($f[11] + $f[12]) / 100; # utime and stime, in clock ticks of 1/100 s
}

subtest 'the client connection cap' => sub {
    my ($gw, $port, $admin) = start(cap => 20);
    like($gw->log_text, qr/up to 20 client connections/, 'the cap is logged at start');
    my @conns = connect_n($port, 30);
    ok(wait_until(sub { metric($admin, 'conflux_client_connections') == 20 }), 'exactly 20 connections are taken');
    ok(wait_until(sub { metric($admin, 'conflux_accept_paused_total{reason="max_client_connections"}') >= 1 }),
       'the pause is counted; the admin listener still answers');
    my $waiting = $conns[-1];
    syswrite($waiting, "GET /u/30 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    ok(!IO::Select->new($waiting)->can_read(0.3), 'a connection past the cap waits in the backlog');
    my $t0 = cpu_seconds($gw->pid);
    ok(!IO::Select->new($waiting)->can_read(1), '... for as long as the cap is reached');
    cmp_ok(cpu_seconds($gw->pid) - $t0, '<', 0.2, 'without spinning meanwhile');
    close $_ for @conns[0 .. 9];
    my $sel = IO::Select->new($waiting);
    my $resp = '';
    while ($sel->can_read(5)) { sysread($waiting, my $b, 4096) or last; $resp .= $b }
    like($resp, qr{\AHTTP/1\.1 200 .*"id":"30"}s, 'once connections close, it is answered');
    is(http_get("http://127.0.0.1:$port/u/1")->{status}, 200, 'and new clients are served');
    close $_ for @conns;
    ok(wait_until(sub { metric($admin, 'conflux_client_connections') == 0 }), 'the gauge returns to 0');
    is($gw->stop, 0, 'exits 0');
};

# At the cap a thread takes the next connection as soon as one of its own closes, not at the next 100 ms re-check.
subtest 'at the cap, a connection that closes lets a waiting one in at once' => sub {
    my ($gw, $port, $admin) = start(cap => 1);
    my $paused = 'conflux_accept_paused_total{reason="max_client_connections"}';
    my @took;
    for my $i (1 .. 7) {
        my ($held) = connect_n($port, 1);
        ok(wait_until(sub { metric($admin, 'conflux_client_connections') == 1 }), "round $i: one connection held")
            or last;
        my $pauses = metric($admin, $paused);
        my ($waiting) = connect_n($port, 1);
        syswrite($waiting, "GET /u/$i HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        # accepting pauses for the cap (and is counted), then re-checks 100 ms later: close just after a pause began
        ok(wait_until(sub { metric($admin, $paused) > $pauses }, 5), "round $i: accepting paused at the cap") or last;
        my $t0 = time;
        close $held;
        my ($sel, $resp) = (IO::Select->new($waiting), '');
        while ($sel->can_read(5)) { sysread($waiting, my $b, 4096) or last; $resp .= $b }
        push @took, time - $t0;
        like($resp, qr{\AHTTP/1\.1 200 }, "round $i: the waiting connection is answered");
        close $waiting;
        ok(wait_until(sub { metric($admin, 'conflux_client_connections') == 0 }), "round $i: and closed");
    }
    my @sorted = sort { $a <=> $b } @took;
    # without it, each would wait for the re-check, most of the 100 ms after the pause began
    cmp_ok($sorted[@sorted / 2], '<', 0.05, sprintf('answered %s ms after the held connection closed',
                                                     join(', ', map { sprintf '%.0f', 1000 * $_ } @took)));
    is($gw->stop, 0, 'exits 0');
};

subtest 'at the fd limit: a pause, no spin' => sub {
    my ($gw, $port, $admin) = start(cap => 100000, nofile => 128);
    like($gw->log_text, qr/open-file limit 128; up to 100000 client connections/, 'the limit is logged at start');
    my @conns = connect_n($port, 200);
    # the kernel completes every handshake (backlog); conflux takes what its fds allow, then accept() says EMFILE
    my $t0 = cpu_seconds($gw->pid);
    my $w0 = time;
    select(undef, undef, undef, 1.5); # a window of measurement, not a wait for a result
    my $used = cpu_seconds($gw->pid) - $t0;
    cmp_ok($used, '<', 0.3, sprintf('conflux used %.2f s of CPU in %.1f s at the fd limit (a spin would use all)', $used, time - $w0));
    close $_ for @conns;
    ok(wait_until(sub { (http_get("http://127.0.0.1:$port/u/7")->{status}) == 200 }), 'once clients leave, requests are served');
    ok(wait_until(sub { metric($admin, 'conflux_accept_paused_total{reason="fd_limit"}') >= 1 }),
       'the pauses were counted');
    is($gw->stop, 0, 'exits 0');
};

# On a stop, the public listeners close while connections they accepted may still be in their TLS handshake: those
# are served as their own listener serves, not as the admin listener (which stays open to report the drain).
subtest 'a TLS handshake that ends during the drain is served by the listener that accepted it' => sub {
    my ($cert, $key) = self_signed_cert() or die 'openssl could not make a certificate';
    my ($port, $admin) = (empty_port(), empty_port());
    my $file = write_file(tmpdir() . "/conflux-$port.yaml", <<"EOF");
listen:
  - host: 127.0.0.1
    port: $port
    tls: { certificate: $cert, key: $key }
threads: 1
admin: 127.0.0.1:$admin
backends:
  svc: { url: "http://127.0.0.1:$m", timeout: 5s }
routes:
  - path: /slow
    calls: [{ name: s, backend: svc, path: "/slow" }]
EOF
    my $gw = spawn(name => "conflux-$port", port => $port, cmd => [bindir() . '/conflux', '-c', $file]);
    my ($pending) = connect_n($port, 1); # accepted; its TLS handshake waits for the ClientHello
    # keeps a request in flight, so that the drain lasts
    my $slow = background(sub { run_cmd(['curl', '-sk', '-o', '/dev/null', '-w', '%{http_code}', "https://127.0.0.1:$port/slow"])->{out} });
    ok(wait_until(sub { metric($admin, 'conflux_inflight_requests') == 1 }), 'a request in flight');
    $gw->signal('TERM');
    ok(wait_until(sub { !IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 1) }),
       'the public listener is closed');
    ok(IO::Socket::SSL->start_SSL($pending, SSL_verify_mode => SSL_VERIFY_NONE, Timeout => 5), 'the pending handshake ends')
        or diag($SSL_ERROR);
    syswrite($pending, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    my ($sel, $resp) = (IO::Select->new($pending), '');
    while ($pending->pending || $sel->can_read(5)) { sysread($pending, my $b, 65536) or last; $resp .= $b }
    like($resp, qr{\AHTTP/1\.1 404 }, "GET /metrics there is the gateway's 404 (no such route)");
    unlike($resp, qr/conflux_requests_total/, "not the admin listener's metrics");
    is($slow->wait, '200', 'the request in flight got its answer');
    is($gw->stop, 0, 'exits 0');
};

done_testing;
