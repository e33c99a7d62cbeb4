# HTTP/1.1 clients that never read their answers. h2o 2.2.5 has no send timeout: once conflux's answer is handed to
# it, a connection whose peer does not read would stay open for ever, its request (and its answer in memory) never
# disposed. conflux releases the request's max_inflight slot as soon as the answer is handed over (so such clients
# never lock others out), and shuts down a connection whose client takes nothing for limits.send_timeout.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use IO::Select;
use IO::Socket::INET;
use Socket qw(SOL_SOCKET SO_RCVBUF);
use Test::More;
use Time::HiRes qw(time sleep);

$SIG{PIPE} = 'IGNORE';

my $dir = tmpdir();
write_file("$dir/big.json", '{"a":"' . ('x' x (4 * 1024 * 1024)) . '"}');
my $mock = spawn_mock(<<"EOF");
stubs:
  - path: /users/{id}
    body: '{"id": "{id}"}'
  - path: /big
    body_file: $dir/big.json
EOF
my $m = $mock->port;

sub start {
    my ($max_inflight, $send_timeout) = @_;
    my $admin = empty_port();
    my $gw = spawn_conflux(<<"EOF");
threads: 1
admin: 127.0.0.1:$admin
limits: { max_inflight: $max_inflight, send_timeout: $send_timeout }
backends:
  svc: { url: "http://127.0.0.1:$m", timeout: 5s }
routes:
  - path: /u/{id}
    calls: [{ name: user, backend: svc, path: "/users/{id}" }]
  - path: /b/{id}
    calls: [{ name: big, backend: svc, path: "/big" }]
  - path: /api/{rest*}
    proxy: svc
EOF
    return ($gw, $admin);
}

# a connection with a small receive buffer, so that the answers pile up on conflux's side
sub connect_small {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(Proto => 'tcp') or die $!;
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, 4096);
    $s->connect(Socket::pack_sockaddr_in($port, Socket::inet_aton('127.0.0.1'))) or die "connect: $!";
    $s->blocking(0);
    return $s;
}

# writes as much of $bytes as the socket takes within $secs
sub push_bytes {
    my ($s, $bytes, $secs) = @_;
    my $end = time + $secs;
    my $sel = IO::Select->new($s);
    while (length $bytes && time < $end) {
        my $n = syswrite($s, $bytes, 65536);
        if ($n) {
            substr($bytes, 0, $n) = '';
        } else {
            $sel->can_write($end - time); # the socket is full: wait until it takes more, or the time is up
        }
    }
}

subtest 'pipelined requests whose answers are never read' => sub {
    my ($gw, $admin) = start(3, '2s');
    my @attackers = map { connect_small($gw->port) } 1 .. 3;
    # each answer is 4 MiB, so a few of them fill the socket buffers whatever the speed of the build
    push_bytes($_, "GET /b/1 HTTP/1.1\r\nHost: x\r\n\r\n" x 8, 1) for @attackers;
    my $t0 = time;
    ok(wait_until(sub { metric($admin, 'conflux_inflight_requests') == 0 }, 5),
       'once their answers pile up unread, the three connections hold no in-flight slot');
    is(http_get($gw->url('/u/2'))->{status}, 200, 'so another client is served (max_inflight: 3)');
    ok(wait_until(sub { metric($admin, 'conflux_send_timeouts_total') == 3 }, 10),
       'the three stalled connections are shut down by the send timeout (2 s)');
    cmp_ok(time - $t0, '>=', 0.5, 'not at once: they had their 2 s');
    ok(wait_until(sub { metric($admin, 'conflux_client_connections') == 0 }, 5), 'and closed');
    close $_ for @attackers;
    is($gw->stop, 0, 'exits 0');
};

subtest 'a large proxied answer that is never read' => sub {
    my ($gw, $admin) = start(2, '1s');
    my @attackers = map { connect_small($gw->port) } 1 .. 2;
    push_bytes($_, "GET /api/big HTTP/1.1\r\nHost: x\r\n\r\n", 1) for @attackers;
    ok(wait_until(sub { metric($admin, 'conflux_requests_total{route="/api/{rest*}",status="200"}') == 2 }, 5),
       'two 4 MiB answers are handed over');
    is(http_get($gw->url('/u/3'))->{status}, 200, 'other clients are served meanwhile (max_inflight: 2)');
    ok(wait_until(sub { metric($admin, 'conflux_send_timeouts_total') == 2 }, 10), 'the stalled connections are shut down');
    ok(wait_until(sub { metric($admin, 'conflux_client_connections') == 0 }, 5), 'and closed');
    close $_ for @attackers;
};

subtest 'a slow reader that keeps reading is not cut off' => sub {
    my ($gw, $admin) = start(2, '1s');
    my $s = connect_small($gw->port);
    push_bytes($s, "GET /api/big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 1);
    my ($got, $end) = (0, time + 30);
    while (time < $end) { # 4 MiB at about 1.5 MiB/s: longer than the 1 s send timeout, never a second without a byte
        my $n = sysread($s, my $buf, 16384);
        last if defined $n && $n == 0;
        $got += $n // 0;
        sleep 0.01; # pacing, not a wait for a result: this client reads slowly on purpose
    }
    cmp_ok($got, '>', 4 * 1024 * 1024, 'the whole answer arrived');
    is(metric($admin, 'conflux_send_timeouts_total'), 0, 'no send timeout');
};

done_testing;
