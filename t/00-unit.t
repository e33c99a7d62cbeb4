# Runs every C unit test binary (build/t/unit/test_*) and relays its TAP as a subtest. Each binary runs under a
# timeout (CF_UNIT_TIMEOUT seconds, 60 by default): one that hangs fails, instead of hanging the run.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use TAP::Parser;
use Test::More;

my $timeout = $ENV{CF_UNIT_TIMEOUT} // 60;
my @bins = sort grep { -x } glob(bindir() . '/t/unit/test_*');
plan skip_all => 'no unit test binaries built' unless @bins;

for my $bin (@bins) {
    my ($name) = $bin =~ m{([^/]+)$};
    subtest $name => sub {
        my $run = run_cmd([$bin], timeout => $timeout); # fails the test past the timeout, or on a sanitizer report
        my $parser = TAP::Parser->new({ tap => $run->{out} });
        my $count = 0;
        while (my $r = $parser->next) {
            if ($r->is_test) {
                ++$count;
                ok($r->is_ok, $r->description);
            } elsif ($r->is_comment) {
                diag($r->as_string);
            } elsif ($r->is_unknown) {
                note($r->as_string);
            }
        }
        ok($count > 0, "$name ran tests");
        is($run->{code}, 0, "$name exited 0") or diag("wait status $run->{status}\n$run->{err}");
        done_testing;
    };
}
done_testing;
