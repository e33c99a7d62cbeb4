# An example integration test of a service (here conflux, with a two-call route) against conflux-mock, using only the
# installed Conflux::Mock and core Perl. The service's binary: $ENV{CONFLUX}, else `conflux` on PATH.
use strict;
use warnings;
use Conflux::Mock;
use File::Temp ();
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP ();
use POSIX ();
use Test::More;
use Time::HiRes ();

# The upstreams: a user service that only answers for tenant "acme", and an orders service.
my $mock = Conflux::Mock->start(yaml => <<'YAML');
stubs:
  - path: /users/{id}
    match: { headers: { X-Tenant: acme } }
    body: '{"id": "{id}", "name": "user {id}"}'
  - path: /orders
    match: { query: { user: "~^[0-9]+$" } }
    body: '[{"id": 1, "total": 9.5}]'
YAML

# The service under test, pointed at the mock.
my $tmp = File::Temp->newdir;
my $port = do { my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1); $s->sockport };
my $mock_url = $mock->url;
open my $fh, '>', "$tmp/service.yaml" or die $!;
print $fh <<"YAML";
listen: [{host: 127.0.0.1, port: $port}]
threads: 1
backends:
  shop: { url: "$mock_url", timeout: 2s, retries: 1 }
routes:
  - path: /page/{user_id}
    forward_headers: [X-Tenant]
    calls:
      - { name: user, backend: shop, path: "/users/{user_id}", required: true }
      - { name: orders, backend: shop, path: "/orders?user={user_id}" }
YAML
close $fh;
my $conflux = $ENV{CONFLUX} || 'conflux';
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    open STDERR, '>', "$tmp/service.log";
    exec $conflux, '-c', "$tmp/service.yaml" or POSIX::_exit(127);
}
my $up = 0;
for (1 .. 500) {
    last if $up = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port);
    Time::HiRes::sleep(0.02);
}
ok($up, 'the service listens') or BAIL_OUT('the service did not start');
my $http = HTTP::Tiny->new(timeout => 10);
my $json = JSON::PP->new;

subtest 'the page asks each upstream once, with the tenant' => sub {
    $mock->reset;
    my $r = $http->get("http://127.0.0.1:$port/page/42", { headers => { 'X-Tenant' => 'acme' } });
    is($r->{status}, 200, 'status 200');
    is_deeply($json->decode($r->{content}),
              { user => { id => '42', name => 'user 42' }, orders => [{ id => 1, total => 9.5 }] }, 'the page');
    my ($user) = @{ $mock->journal(path => '/users/42') };
    is($user->{headers}{'x-tenant'}, 'acme', 'the user service got the tenant');
    is(scalar @{ $mock->journal }, 2, 'two upstream requests in all');
};

subtest 'a request the user service does not expect: the service answers 404 and says so' => sub {
    $mock->reset;
    my $r = $http->get("http://127.0.0.1:$port/page/42", { headers => { 'X-Tenant' => 'other' } });
    is($r->{status}, 404, 'the required call\'s 404 is the page\'s status');
    my ($miss) = @{ $mock->journal(path => '/users/42') };
    like($json->encode($miss->{closest} // {}), qr/x-tenant/i, 'the mock says which condition it missed');
};

subtest 'a failing upstream: one 503, then the retry answers' => sub {
    $mock->reset;
    $mock->add_stubs({ path => '/users/{id}', match => { headers => { 'X-Tenant' => 'acme' } }, sequence => [503, 200],
                       body => '{"id": "{id}", "name": "user {id}"}' });
    my $r = $http->get("http://127.0.0.1:$port/page/7", { headers => { 'X-Tenant' => 'acme' } });
    is($r->{status}, 200, 'the page still answers');
    is(scalar @{ $mock->journal(path => '/users/7') }, 2, 'the user service was asked twice');
};

kill 'TERM', $pid;
waitpid($pid, 0);
is($? >> 8, 0, 'the service stops cleanly');
is($mock->stop, 0, 'the mock stops cleanly');
done_testing;
