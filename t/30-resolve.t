# Host names are resolved again every resolve_every, off the loop, and every address of a name is a server of the
# rotation: an address that goes away leaves it, a new one joins. The test runs conflux in a mount namespace of its own
# (unshare -m) with a hosts file of the test's bind-mounted over /etc/hosts, so that it can change what a name
# resolves to; conflux itself has no test switch for this.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use JSON::PP ();
use Test::More;

my $probe = run_cmd(['unshare', '-m', 'sh', '-c', 'mount --bind /dev/null /etc/hosts'], timeout => 10);
plan skip_all => 'needs a private mount namespace (unshare -m, mount --bind): ' . ($probe->{err} =~ s/\s+$//r)
    unless ($probe->{code} // 1) == 0;

my $hosts = write_file(tmpdir() . '/hosts', "127.0.0.2 svc.test\n127.0.0.3 svc.test\n");
# rewritten in place: the bind mount holds the file's inode
sub set_hosts {
    open my $fh, '+<', $hosts or die "$hosts: $!";
    truncate $fh, 0;
    print $fh join('', map { "$_ svc.test\n" } @_);
    close $fh;
}

my $port = empty_port();
my %mock;
for my $ip (qw(127.0.0.2 127.0.0.3)) {
    $mock{$ip} = spawn_mock("listen: $ip:$port\nstubs:\n  - path: /who\n    body: '{\"ip\": \"$ip\"}'\n",
                            ready => qr/^listening on /m);
}
# requests each mock got since its last reset
sub count {
    my ($ip) = @_;
    my $r = http_get("http://$ip:$port/__mock/stats");
    return $r->{status} == 200 ? JSON::PP->new->decode($r->{body})->{stubs}{'GET /who'} // 0 : -1;
}
sub reset_mocks {
    http_request('POST', "http://$_:$port/__mock/reset") for keys %mock;
}

my $gw = spawn_conflux(<<"EOF", wrap => ['unshare', '-m', 'sh', '-c', 'mount --bind "$0" /etc/hosts && exec "$@"', $hosts]);
threads: 2
backends:
  svc:
    url: http://svc.test:$port
    resolve_every: 200ms
routes:
  - path: /who
    calls:
      - { name: who, backend: svc, path: /who, required: true }
EOF

# 20 requests; how many reached each address
sub spread {
    reset_mocks();
    my $failed = grep { http_get($gw->url('/who'))->{status} != 200 } 1 .. 20;
    return { failed => $failed, map { $_ => count($_) } keys %mock };
}

subtest 'every address of a name is a server of the rotation' => sub {
    ok(wait_until(sub { $gw->log_count(qr/backend svc: svc\.test resolves to 127\.0\.0\.[23], 127\.0\.0\.[23]\n/) >= 2 }),
       'each thread resolved svc.test to both addresses');
    my $s = spread();
    is($s->{failed}, 0, 'every call succeeded');
    cmp_ok($s->{'127.0.0.2'}, '>=', 5, "127.0.0.2 got $s->{'127.0.0.2'} of 20");
    cmp_ok($s->{'127.0.0.3'}, '>=', 5, "127.0.0.3 got $s->{'127.0.0.3'} of 20");
};

# the name now resolves to $only alone: once both threads have seen it, every call goes there, none to $gone
sub follows {
    my ($only, $gone) = @_;
    set_hosts($only);
    ok(wait_until(sub { $gw->log_count(qr/svc\.test resolves to \Q$only\E\n/) >= 2 }, 5), 'the change was seen by both threads');
    my $s = spread();
    is($s->{failed}, 0, 'every call succeeded');
    is($s->{$only}, 20, "$only got all");
    is($s->{$gone}, 0, "$gone got none");
}

subtest 'an address that goes away leaves the rotation' => sub { follows('127.0.0.3', '127.0.0.2') };
subtest 'a new address joins it' => sub { follows('127.0.0.2', '127.0.0.3') };

done_testing;
