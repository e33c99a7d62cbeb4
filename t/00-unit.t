# Runs every C unit test binary (build/t/unit/test_*) and relays its TAP as a subtest.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use TAP::Parser;
use Test::More;

my @bins = sort grep { -x } glob(bindir() . '/t/unit/test_*');
plan skip_all => 'no unit test binaries built' unless @bins;

for my $bin (@bins) {
    my ($name) = $bin =~ m{([^/]+)$};
    subtest $name => sub {
        my $parser = TAP::Parser->new({ exec => [$bin] });
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
        is($parser->exit, 0, "$name exited 0") or diag("wait status " . $parser->wait);
        done_testing;
    };
}
done_testing;
