# What conflux reads from and writes to memcached, seen in memcached itself: an entry whose ttl plus its stale windows
# goes past 30 days is still stored (memcached reads a larger expiration as a date, long past); an answer larger than
# memcached's item size stays local (memcached's refusal of a quiet store would cost the tier its connection); a value
# that no conflux could have written (numbers out of their range, a stored time far ahead) is a miss, not an entry kept
# for ever or arithmetic that overflows.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Digest::SHA qw(sha256_hex);
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(time);

my ($memcached) = grep { -x } map { "$_/memcached" } split(/:/, $ENV{PATH} // ''), '/usr/bin';
plan skip_all => 'memcached is not installed (apt-get install memcached)' unless $memcached;

my $mport = empty_port();
my $mc = spawn(name => 'memcached', port => $mport, cmd => [$memcached, '-l', '127.0.0.1', '-p', $mport, '-U', '0', '-m', '16', ($> == 0 ? ('-u', 'nobody') : ())]);

# a body over memcached's default item size (1 MiB)
my $big = write_file(tmpdir() . "/big-$$.json", '{"pad": "' . ('x' x (1100 * 1024)) . '"}');
my $mock = spawn_mock(<<"EOF");
stubs:
  - path: /users/{id}
    body: '{"id": "{id}", "name": "user {id}"}'
  - path: /big/{id}
    body_file: $big
EOF
my $m = $mock->port;
my $admin = empty_port();
my $g = spawn_conflux(<<"EOF");
admin: 127.0.0.1:$admin
threads: 2
cache:
  memcached: 127.0.0.1:$mport
backends:
  svc: { url: "http://127.0.0.1:$m" }
routes:
  - path: /p/{id}
    calls:
      - { name: profile, backend: svc, path: "/users/{id}", cache: 30s }
  - path: /big/{id}
    calls:
      - { name: big, backend: svc, path: "/big/{id}", cache: 30s }
  - path: /long/{id}
    calls:
      - { name: profile, backend: svc, path: "/users/{id}", cache: { ttl: 1h, stale_if_error: 720h } }
EOF

# one memcached text-protocol command; returns the reply up to END / STORED / an error line
sub mc_cmd {
    my ($cmd) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $mport, Timeout => 2) or return undef;
    print $s $cmd;
    my $out = '';
    while (my $line = <$s>) {
        $out .= $line;
        last if $line =~ /^(END|STORED|NOT_STORED|ERROR|CLIENT_ERROR|SERVER_ERROR)/;
    }
    close $s;
    return $out;
}

sub mc_stat {
    my ($name) = @_;
    my ($v) = (mc_cmd("stats\r\n") // '') =~ /^STAT \Q$name\E (\d+)/m;
    return $v // -1;
}

# the memcached key of a call's answer: cache.c's key (backend, method, URL, each length-prefixed), hashed
sub mc_key {
    my ($url) = @_;
    my $k = join('', map { sprintf("%s%d:%s\n", $_->[0], length $_->[1], $_->[1]) } [b => 'svc'], [m => 'GET'], [u => $url]);
    return 'conflux:' . sha256_hex($k);
}

ok(wait_until(sub { $g->log_count(qr/connected to memcached at 127\.0\.0\.1:$mport/) }, 10), 'connected to memcached');
# the client counts itself connected just after it logs so: warm up until a store reaches memcached
my $warm = 0;
for my $try (1 .. 10) {
    my $sets = mc_stat('cmd_set');
    http_get($g->url("/p/warm$try"));
    last if $warm = wait_until(sub { mc_stat('cmd_set') > $sets }, 2);
}
ok($warm, 'stores reach memcached');

subtest 'an entry kept for more than 30 days (ttl + stale_if_error) is stored in memcached' => sub {
    my $sets = mc_stat('cmd_set');
    my $r = http_get($g->url('/long/7'));
    like($r->{headers}{'cache-status'}, qr/fwd=miss; fwd-status=200; stored/, 'miss, stored');
    ok(wait_until(sub { mc_stat('cmd_set') > $sets }, 5), 'the set reached memcached');
    my $got = mc_cmd('get ' . mc_key('/users/7') . "\r\n") // '';
    like($got, qr/^VALUE \S+ \d+ \d+\r\nCF1 \d+ 3600000 0 2592000000 200\n\{"id": ?"7"/, 'memcached holds it (not expired at once)')
        or diag($got);
};

subtest 'an answer over memcached\'s item size is kept locally only, and the tier keeps its connection' => sub {
    my $before = $g->metrics;
    my $r = http_get($g->url('/big/1'));
    is($r->{status}, 200, 'the big answer: 200');
    like($r->{headers}{'cache-status'}, qr/fwd=miss; fwd-status=200; stored/, 'miss, stored');
    # a store that follows it reaches memcached on the same connection
    my $sets = mc_stat('cmd_set');
    like(http_get($g->url('/p/after-big'))->{headers}{'cache-status'}, qr/stored/, 'a small answer next: stored');
    ok(wait_until(sub { mc_stat('cmd_set') > $sets }, 5), 'it reached memcached');
    my $after = $g->metrics;
    is(delta($before, $after, 'conflux_cache_memcached_too_large_total'), 1, 'one store not sent: too large');
    is($g->log_count(qr/received unexpected serial/), 0, 'h2o\'s client saw no reply it did not expect');
    is($g->log_count(qr/connected to memcached/), 1, 'and never reconnected');
    like(http_get($g->url('/big/1'))->{headers}{'cache-status'}, qr/^conflux; hit; ttl=\d+; detail="big"$/, 'a local hit then');
};

subtest 'values no conflux writes are misses' => sub {
    my $now = int(time * 1000);
    my %bad = (
        'ttl near INT64_MAX'        => "CF1 $now 9223372036854775000 0 0 200\n{\"id\":\"bad\"}",
        'ttl beyond 30 days'        => "CF1 $now 9000000000000 0 0 200\n{\"id\":\"bad\"}",
        'stored time INT64_MIN'     => "CF1 -9223372036854775808 30000 0 0 200\n{\"id\":\"bad\"}",
        'stored time in 100 years'  => "CF1 " . ($now + 100 * 365 * 86400 * 1000) . " 30000 0 0 200\n{\"id\":\"bad\"}",
        'swr of 2^64-1'             => "CF1 $now 30000 18446744073709551615 0 200\n{\"id\":\"bad\"}",
        'stale_if_error near 2^63'  => "CF1 $now 30000 0 9223372036854775000 200\n{\"id\":\"bad\"}",
    );
    my $i = 0;
    for my $what (sort keys %bad) {
        my $id = 'bad' . ++$i;
        my $v = $bad{$what};
        is(mc_cmd(sprintf("set %s 0 300 %d\r\n%s\r\n", mc_key("/users/$id"), length $v, $v)), "STORED\r\n", "$what: set");
        my $before = $mock->stub_count('GET /users/{id}');
        my $r = http_get($g->url("/p/$id"));
        is($r->{status}, 200, "$what: 200");
        like($r->{headers}{'cache-status'} // '', qr/^conflux; fwd=miss; fwd-status=200; stored; ttl=(29|30); detail="profile"$/,
             "$what: a miss, answered by the upstream");
        is($mock->stub_count('GET /users/{id}') - $before, 1, "$what: the upstream was asked");
        is(decode_json_ok($r->{body})->{profile}{name}, "user $id", "$what: the upstream's body");
    }
};

$g->stop;
done_testing();
