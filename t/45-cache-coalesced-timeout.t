# A cached call that joins another call's upstream request (coalescing) still has its own timeout: two routes call
# the same URL, one with a long timeout, one with a short one. The short one, joining the long one's request, fails
# with `timeout` when its own timeout passes, not when the other request ends or its route's deadline passes; and
# with stale_if_error an expired entry answers it then. The request it joined goes on and its answer is stored.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use IO::Socket::INET;
use IO::Select;
use Test::More;
use Time::HiRes qw(time sleep);

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /slow/{id}
    body: '{"id": "{id}"}'
    delay: 1200ms
EOF
my $m = $mock->port;
my $gw = spawn_conflux(<<"EOF");
threads: 2
backends:
  svc: { url: "http://127.0.0.1:$m", timeout: 5s }
routes:
  - path: /long/{id}
    calls:
      - { name: a, backend: svc, path: "/slow/{id}", cache: { ttl: 1s, stale_if_error: 1m }, timeout: 3s }
  - path: /short/{id}
    deadline: 3s
    calls:
      - { name: a, backend: svc, path: "/slow/{id}", cache: { ttl: 1s, stale_if_error: 1m }, timeout: 200ms, required: true }
EOF

# starts a GET on its own connection and returns at once
sub start_get {
    my ($path) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $gw->port) or die "connect: $!";
    $s->autoflush(1);
    print $s "GET $path HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    return { sock => $s, t0 => time, buf => '' };
}

sub finish_get {
    my ($c) = @_;
    my $sel = IO::Select->new($c->{sock});
    my $deadline = time + 10;
    while (time < $deadline) {
        next unless $sel->can_read(0.5);
        last unless sysread($c->{sock}, my $chunk, 65536);
        $c->{buf} .= $chunk;
    }
    $c->{elapsed} = time - $c->{t0};
    ($c->{status}) = $c->{buf} =~ m{^HTTP/1\.1 (\d+)};
    return $c;
}

subtest 'a coalesced call times out at its own timeout' => sub {
    my $leader = start_get('/long/1');
    ok(wait_until(sub { $mock->stub_count('GET /slow/{id}') >= 1 }, 5), 'the long call\'s request is at the upstream');
    my $short = finish_get(start_get('/short/1'));
    is($short->{status}, 504, 'the short call: 504 (its required call timed out)');
    like($short->{buf}, qr/"error":"timeout"/, 'failed with timeout, not deadline')
        or diag(substr($short->{buf}, 0, 600));
    cmp_ok($short->{elapsed}, '<', 0.8, sprintf('answered at its 200 ms timeout (%.3fs), not at the 1.2 s answer', $short->{elapsed}));
    like($short->{buf}, qr/^cache-status: conflux; fwd=miss; collapsed; detail="a"\r$/mi, 'Cache-Status: it had joined a request');
    like($short->{buf}, qr/^proxy-status: conflux; error=http_response_timeout; details="a"\r$/mi, 'Proxy-Status: a timeout');
    finish_get($leader);
    is($leader->{status}, 200, 'the long call: 200');
    like($leader->{buf}, qr/^cache-status: conflux; fwd=miss; fwd-status=200; stored;/mi, 'its answer stored');
    like(http_get($gw->url('/short/1'))->{headers}{'cache-status'}, qr/^conflux; hit;/, 'the short route: a hit then');
    is($mock->stub_count('GET /slow/{id}'), 1, 'one upstream request');
};

subtest 'stale_if_error answers a coalesced call at its own timeout' => sub {
    $mock->reset;
    my $r = http_get($gw->url('/long/2'));
    is($r->{status}, 200, 'stored');
    sleep 1.1; # expired, within stale_if_error
    my $leader = start_get('/long/2');
    ok(wait_until(sub { $mock->stub_count('GET /slow/{id}') >= 2 }, 5), 'the refresh is at the upstream');
    my $short = finish_get(start_get('/short/2'));
    is($short->{status}, 200, 'the short call: 200');
    like($short->{buf}, qr/cache-status: conflux; hit; fwd=stale/i, 'from the expired entry');
    cmp_ok($short->{elapsed}, '<', 0.8, sprintf('at its 200 ms timeout (%.3fs)', $short->{elapsed}));
    finish_get($leader);
    is($leader->{status}, 200, 'the long call: 200');
};

done_testing();
