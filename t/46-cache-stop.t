# A stop while cache flights run: flights whose waiters all left (the stop does not wait for them), and waiters on both
# loops of one flight when shutdown_timeout passes. conflux exits 0 and its log holds no sanitizer report.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(time sleep);

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /slow/{id}
    body: '{"id": "{id}"}'
    delay: 3s
EOF
my $m = $mock->port;
sub conf {
    my ($extra) = @_;
    my $admin = empty_port();
    return <<"EOF";
admin: 127.0.0.1:$admin
threads: 2
$extra
backends:
  svc: { url: "http://127.0.0.1:$m", timeout: 5s }
routes:
  - path: /slow/{id}
    deadline: 4s
    calls: [{ name: a, backend: svc, path: "/slow/{id}", cache: 30s }]
EOF
}

sub send_get {
    my ($gw, $path) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $gw->port) or die "connect: $!";
    $s->autoflush(1);
    print $s "GET $path HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    return $s;
}

subtest 'flights without waiters at a stop' => sub {
    my $gw = spawn_conflux(conf(''));
    $mock->reset;
    my @s = map { send_get($gw, "/slow/$_") } 1 .. 6;
    ok(wait_until(sub { $mock->stats->{total} >= 6 }, 5), 'six flights at the upstream');
    close $_ for @s; # the clients leave: the flights go on
    ok(wait_until(sub { $gw->metric('conflux_inflight_requests') == 0 }, 5), 'no request left');
    my $t0 = time;
    $gw->stop(timeout => 10);
    cmp_ok(time - $t0, '<', 2.5, 'it stopped without waiting for the flights');
};

subtest 'waiters on both loops of one flight when shutdown_timeout passes' => sub {
    my $gw = spawn_conflux(conf('shutdown_timeout: 300ms'));
    $mock->reset;
    my @s = map { send_get($gw, '/slow/same') } 1 .. 8;
    ok(wait_until(sub { $mock->stats->{total} >= 1 }, 5), 'the flight is at the upstream');
    sleep 0.2;
    is($mock->stats->{total}, 1, 'one flight for the eight');
    $gw->stop(timeout => 10);
    like($gw->log_text, qr/shutdown_timeout passed with \d+ requests in flight/, 'abandoned');
    close $_ for @s;
};

done_testing();
