# Two routes cache the same URL of the same backend with different ttls. The cache key has no policy in it (docs/http.md,
# "Caching": backend, method, URL, credentials), so one entry serves both; a lookup takes it as fresh for the shorter of
# the entry's ttl and the caller's own, so a call configured with `cache: 1s` is never answered from an entry 1.5 s old
# as fresh, whoever stored it.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;
use Time::HiRes qw(sleep);

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /p/{id}
    body: '{"id": "{id}"}'
EOF
my $m = $mock->port;
my $gw = spawn_conflux(<<"EOF");
threads: 1
backends:
  svc: { url: "http://127.0.0.1:$m" }
routes:
  - path: /long/{id}
    calls: [{ name: a, backend: svc, path: "/p/{id}", cache: 1h }]
  - path: /short/{id}
    calls: [{ name: a, backend: svc, path: "/p/{id}", cache: 1s }]
EOF

subtest 'a call with a 1 s ttl is not answered from an entry older than 1 s' => sub {
    like(http_get($gw->url('/long/1'))->{headers}{'cache-status'}, qr/fwd=miss; fwd-status=200; stored; ttl=3600;/,
         'the 1 h route stores the answer');
    like(http_get($gw->url('/short/1'))->{headers}{'cache-status'}, qr/^conflux; hit; ttl=[01];/,
         'the 1 s route takes it at once, fresh for its own 1 s at most');
    like(http_get($gw->url('/long/1'))->{headers}{'cache-status'}, qr/^conflux; hit; ttl=3\d{3};/,
         'the 1 h route still sees its own ttl');
    sleep 1.5; # the subject: the 1 s ttl running out
    my $r = http_get($gw->url('/short/1'));
    like($r->{headers}{'cache-status'}, qr/^conflux; (fwd=miss|hit; fwd=stale)/, 'the 1 s route: not a fresh hit')
        or diag($r->{headers}{'cache-status'});
};

done_testing();
