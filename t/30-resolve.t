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

my $gwport = empty_port();
my $file = write_file(tmpdir() . "/conflux-$gwport.yaml", <<"EOF");
listen:
  - host: 127.0.0.1
    port: $gwport
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
my $gw = spawn(name => "conflux-$gwport", port => $gwport,
               cmd => ['unshare', '-m', 'sh', '-c', 'mount --bind "$0" /etc/hosts && exec "$1" -c "$2"', $hosts,
                       bindir() . '/conflux', $file]);

# 20 requests; how many reached each address
sub spread {
    reset_mocks();
    my $failed = grep { http_get("http://127.0.0.1:$gwport/who")->{status} != 200 } 1 .. 20;
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

subtest 'an address that goes away leaves the rotation' => sub {
    set_hosts('127.0.0.3');
    ok(wait_until(sub { $gw->log_count(qr/svc\.test resolves to 127\.0\.0\.3\n/) >= 2 }, 5), 'the change was seen by both threads');
    my $s = spread();
    is($s->{failed}, 0, 'every call succeeded');
    is($s->{'127.0.0.2'}, 0, '127.0.0.2 got none');
    is($s->{'127.0.0.3'}, 20, '127.0.0.3 got all');
};

subtest 'a new address joins it' => sub {
    set_hosts('127.0.0.2');
    ok(wait_until(sub { $gw->log_count(qr/svc\.test resolves to 127\.0\.0\.2\n/) >= 2 }, 5), 'the change was seen by both threads');
    my $s = spread();
    is($s->{failed}, 0, 'every call succeeded');
    is($s->{'127.0.0.2'}, 20, '127.0.0.2 got all');
    is($s->{'127.0.0.3'}, 0, '127.0.0.3 got none');
};

done_testing;
