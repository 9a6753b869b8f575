/*
 * change.pml: change-following apply. An enactor writes only the endpoints whose records differ
 * between the plan the store has fully applied and its own plan (plus those any begun but
 * unfinished apply may have touched); every other endpoint keeps its old stamp and is served
 * at the store's applied generation. When an input of that diff is gone it writes every endpoint
 * instead (a full apply). Spin must verify it EXHAUSTIVELY; docs/model.md ("Change-following
 * apply") gives the results and the broken variants. include/planfence/enactor.hpp implements
 * it; the store words are each store's read_marks, begin_apply and finish_apply.
 *
 * Why the protocol is needed. If an enactor simply skipped unchanged endpoints, an enactor
 * holding an intermediate plan would overwrite an endpoint that the newest plan left unchanged
 * (its stamp stays old, so the stamp CAS does not refuse it) with that plan's older records
 * (S1), and endpoints that never change would keep old stamps and pin old plans forever (S3).
 *
 * Store (one zone): per endpoint a stamp (g_e, f_e) and its records rec_e, changed together by
 * one compare-and-swap; a fence floor F; and two words, each changed only by an atomic
 * conditional write carrying the writer's token (refused when the token is below F):
 *   B  the newest generation whose apply has BEGUN (monotonic)
 *   A  the newest generation fully APPLIED (monotonic)
 * An endpoint's EFFECTIVE generation is eff(e) = max(g_e, A).
 *
 * Records are modelled as content ids from a content table CONTENT(h, e) (the records plan h
 * gives endpoint e; ids are per endpoint). Default table, generations 0..G = 0..3 (plan 0 is
 * the one applied at the start, plans 1..G are published; plan 0 is a plan like the others:
 * pinned as a diff input, collectable, refused when gone):
 *             gen 0  gen 1  gen 2  gen 3
 *   e0          X      Y      X      X     (plan 1 is an intermediate plan that differs)
 *   e1          Z      Z      W      W     (unchanged 0->1 and 2->3; 2->3 changes nothing)
 * -DC0=... and -DC1=... give another table: a decimal number whose h-th digit from the right is
 * the content id at generation h (default C0=10: e0 is 0,1,0,0 at generations 0..3; C1=1100).
 *
 * Actors
 *   enactor[E]   (st values)
 *     acquire      a lease grant: token = last + 1 (possible at any moment; the previous
 *                  holder is not told and may go on with its old token).
 *     raise_floor  F = max(F, token).
 *     pick         any published plan T that is not deleted, pinned (a delayed enactor holds
 *                  an old plan: targets are nondeterministic).
 *     read         1. A0 = A, B0 = B (one read).
 *                  2. T <= A0: nothing to do. B0 > T: a newer plan has begun: stale, stop.
 *     pin          2a. pin the diff's inputs ONE BY ONE, one step each: A0, then every plan h
 *                  with A0 < h <= B0 (h != T: T is pinned already). A pin is refused on a
 *                  deleted plan: then the enactor drops its input pins and goes to FULL mode
 *                  (it needs no diff input). At any pin step it may also choose full mode
 *                  (the C++ does when B0 - A0 exceeds a bound; -DNO_FULL_CHOICE: never).
 *     begin        3. B0 < T: conditional write B := T, only if B is still B0 and token >= F
 *                  (B changed: back to read, mode and input pins dropped; token < F: fenced,
 *                  stop). B0 == T: another enactor began T (and may have crashed): join it.
 *                  4. diff mode: D = diff(A0, T) UNION diff(A0, h) for every h with
 *                  A0 < h <= B0 (the endpoints a begun-but-unfinished apply may have touched);
 *                  full mode: D = every endpoint.
 *     rd, cas      5. for each e in D, in any order (nondeterministic), interleaved with
 *                  everyone: read the stamp (g_e >= T: stale, done with e; f_e > token:
 *                  fenced, stop), then CAS stamp and records to (T, token, CONTENT(T, e)),
 *                  refused stale (g_e >= T), fenced (token < f_e or token < F), or conflict
 *                  (the stamp changed otherwise: read it again).
 *     set_applied  6. every e in D written or refused stale: conditional write
 *                  A := max(A, T) (token >= F; else fenced, stop). Unpin, pick again.
 *     crash        at any step an enactor may stop: its pins are dropped (its lease expires)
 *                  and it may come back only with a new grant. Being fenced does the same.
 *   collector    deletes plan p iff no enactor pins p, p is not the newest published plan (G),
 *                and p is not in the live set L = { eff(e) for every endpoint } UNION { A, B },
 *                read in the same atomic step as the deletion. (The C++ registry closes p to
 *                pins first, then reads L from the store, then unlinks: a pin is refused from
 *                the close on, so the coarse step subsumes it.) It may run at any moment, as
 *                often as it likes.
 *
 * Granularity: a step is one access to shared state (one read of A and B, one pin, one
 * conditional write, one stamp read, one CAS, one deletion). The store's conditional writes are
 * one step each (floor check and CAS together, as in fixed.pml's coarse model). Plans 1..G are
 * all published at the start (a pick of any published plan covers every publish order).
 *
 * Symmetry: the enactors take their first grant in pid order (as in fixed.pml).
 *
 * Properties (assertion texts name the property; the variables they read change only in the
 * steps that assert them, so they hold in every reachable state; -DGLOBAL_LTL checks them at
 * every step with a never claim as well)
 *   I    for every endpoint, rec_e == CONTENT(eff(e), e): every endpoint serves exactly the
 *        records of its effective generation (checked at every commit, every A write and every
 *        deletion).
 *   S1'  eff(e) never decreases (at every commit and A write).
 *   S2   no write with a token below the floor lands (commit, B, A).
 *   S3'  no endpoint's eff(e) names a deleted plan (at every deletion, commit and A write);
 *        and in diff mode the plans the diff reads (A0, the begun plans in (A0, B0], T) are
 *        present when the enactor computes D and at each of its commits; T is present at
 *        every commit in either mode (S3_inputs_present).
 *
 * Broken variants (each must give a counterexample)
 *   -DBROKEN_NO_UNION          D = diff(A0, T) only                                    -> I
 *   -DBROKEN_A_BEFORE_WRITES   A := T raised right after begin, before D is written     -> I
 *   -DBROKEN_NO_BEGIN          step 3 skipped: B never raised                          -> I
 *   -DBROKEN_LIVE_NO_APPLIED   the live set built without A: the endpoints' stamps g_e
 *                              (not eff) and B; an unchanged endpoint's eff = A        -> S3
 *   -DBROKEN_COLLECT_BELOW_B   no live set: any unpinned p < B is deleted              -> S3
 *   -DNO_INPUT_PINS            the diff's inputs are not pinned and there is no full
 *                              mode (only T pinned; the protocol as first written)     -> S3
 *   -DBROKEN_A_NOT_MAX         step 6 writes A := T, not max(A, T): harmless with fences
 *                              (verifies); with -DNO_FENCES                           -> S1
 * Variants that are safe (each verifies; docs/model.md says why)
 *   -DSKIP_MISSING_INPUT       a refused pin of a begun plan h in (A0, B0] is ignored and
 *                              the diff computed over the present plans only, instead of
 *                              full mode (a refused pin of A0 still goes full: without its
 *                              base there is no diff). Safe: a deleted h is in no endpoint's
 *                              eff, so what it wrote is covered by a later plan or by A.
 *   -DLIVE_NO_APPLIED_MARK     L = { eff(e) } UNION { B }: A left out as a member only (eff
 *                              still uses it). A can then go once every endpoint is stamped
 *                              above it, and the next apply falls back to full mode
 *   -DLIVE_NO_BEGUN_MARK       L = { eff(e) } UNION { A }: likewise, for the begun plan
 *   -DLIVE_STAMPS_AND_MARKS    L = { g_e } UNION { A, B }: a superset of the rule's (eff(e)
 *                              is g_e or A), which also keeps a plan that only a stamp below
 *                              A names: safe, but an unchanged endpoint pins its old plan
 * Other variants
 *   -DNO_FENCES                no fence checks (and no S2): writers fully concurrent; I, S1'
 *                              and S3' must hold without fences (they do)
 *   -DNO_FULL_CHOICE           full mode only when a pin is refused, never by choice
 *   -DNO_CRASH                 enactors never crash (only fences stop them)
 *   -DGLOBAL_LTL               I and S3' also as an LTL invariant (never claim), checked at every
 *                              step; -DNO_STEP_ASSERTS leaves only that to catch a violation
 *   -DNO_SYMMETRY              every order of first grants
 */

#ifndef G
#define G          3    /* plans 1..G published; plan 0 applied at the start (2..4)           */
#endif
#ifndef E
#define E          3    /* enactors (1..3)                                                     */
#endif
#define N          2    /* endpoints: the content table is written for two                     */
#ifndef MAX_GRANTS
#define MAX_GRANTS 3    /* lease grants, i.e. tokens 1..MAX_GRANTS (bounds crashes/restarts)   */
#endif
/* content table: digit h (from the right, decimal) = content id at generation h */
#ifndef C0
#define C0 10           /* e0: gen 0 X(0), gen 1 Y(1), gen 2 X(0), gen 3 X(0)                  */
#endif
#ifndef C1
#define C1 1100         /* e1: gen 0 Z(0), gen 1 Z(0), gen 2 W(1), gen 3 W(1)                  */
#endif
/* 10^h for h in 0..4, without a conditional expression (the LTL parser takes none) */
#define P10(h)         (1 + 9 * ((h) >= 1) + 90 * ((h) >= 2) + 900 * ((h) >= 3) + 9000 * ((h) >= 4))
#define CONT(c, h)     (((c) / P10(h)) % 10)

#if G < 2 || G > 4
#error "G must be 2..4 (extend the unrolled macros)"
#endif
#if E < 1 || E > 3
#error "E must be 1..3 (extend PINNED)"
#endif

/* fences: -DNO_FENCES takes every fence check out (and S2 with it), so that enactors with any
 * tokens write concurrently: I and S3' must then hold by B, A and the stamp CAS alone */
#ifdef NO_FENCES
#define BELOW_FLOOR      false
#define STAMP_FENCED(x)  false
#define CHECK_S2()       skip
#define TOKEN(n)         1      /* tokens mean nothing: all alike, so they add no states */
#else
#define BELOW_FLOOR      (f < F)
#define STAMP_FENCED(x)  ((x) > f)
#define CHECK_S2()       assert(S2_fencing && f >= F)
#define TOKEN(n)         (n)
#endif

#define CONTENT(h, e)  ((((e) == 0) -> CONT(C0, h) : CONT(C1, h)))
#define MAX(a, b)      (((a) >= (b)) -> (a) : (b))
#define EFF(e)         MAX(g[e], A)
#define BIT(p)         (1 << (p))

/* Constant names that appear in the assertion texts (hidden: not part of the state vector). */
hidden byte I_records_match_eff = 1;
hidden byte S1_eff_no_regression = 1;
hidden byte S2_fencing = 1;
hidden byte S3_eff_not_deleted = 1;
hidden byte S3_inputs_present = 1;

/* store */
byte A;                 /* newest generation fully applied                                    */
byte B;                 /* newest generation whose apply has begun                            */
byte F;                 /* fence floor                                                        */
byte g[N];              /* stamp generation                                                   */
byte fe[N];             /* stamp fence                                                        */
byte rec[N];            /* records: content id (0 = CONTENT(0, e) in the default table)       */

/* registry */
bool removed[G + 1];    /* plan deleted                                                       */
byte pins[E];           /* the plans enactor i pins: bit p (its target, and its diff inputs)  */

/* lease authority */
byte grants;            /* last token granted                                                 */

/* symmetry: see fixed.pml (`started` is a function of the enactors' local states) */
byte started;
#ifdef NO_SYMMETRY
#define FIRST_OK _pid
#else
#define FIRST_OK started
#endif

mtype = { acquire, raise_floor, pick, read, pin, begin, rd, cas, set_applied };

#if E == 1
#define PINNED(p)      (pins[0] & BIT(p))
#elif E == 2
#define PINNED(p)      ((pins[0] | pins[1]) & BIT(p))
#else
#define PINNED(p)      ((pins[0] | pins[1] | pins[2]) & BIT(p))
#endif

/* a diff input skipped (-DSKIP_MISSING_INPUT only: its pin was refused and ignored) */
#ifdef SKIP_MISSING_INPUT
#define SKIPPED(p)     (skipped & BIT(p))
#else
#define SKIPPED(p)     false
#endif

/* a plan the diff reads is deleted: A0 or a begun plan in (A0, B0] (the range [A0, B0]), not
 * skipped, or T */
#define RM_IN(p)       (removed[p] && ((a0 <= (p) && (p) <= b0 && !SKIPPED(p)) || (p) == T))
#if G == 2
#define INPUT_REMOVED  (RM_IN(0) || RM_IN(1) || RM_IN(2))
#elif G == 3
#define INPUT_REMOVED  (RM_IN(0) || RM_IN(1) || RM_IN(2) || RM_IN(3))
#else
#define INPUT_REMOVED  (RM_IN(0) || RM_IN(1) || RM_IN(2) || RM_IN(3) || RM_IN(4))
#endif

/* endpoint e is in D: changed from A0 to T, or from A0 to a begun plan h, A0 < h <= B0 */
#define DIFF(a, h, e)    (CONTENT(a, e) != CONTENT(h, e))
#define BEGUN_DIFF(h, e) (a0 < (h) && (h) <= b0 && !SKIPPED(h) && DIFF(a0, h, e))
#if G == 2
#define UNION_DIFF(e) (BEGUN_DIFF(1, e) || BEGUN_DIFF(2, e))
#elif G == 3
#define UNION_DIFF(e) (BEGUN_DIFF(1, e) || BEGUN_DIFF(2, e) || BEGUN_DIFF(3, e))
#else
#define UNION_DIFF(e) (BEGUN_DIFF(1, e) || BEGUN_DIFF(2, e) || BEGUN_DIFF(3, e) || BEGUN_DIFF(4, e))
#endif
#ifdef BROKEN_NO_UNION
#define IN_D(e)       (full_apply || DIFF(a0, T, e))
#else
#define IN_D(e)       (full_apply || DIFF(a0, T, e) || UNION_DIFF(e))
#endif

/* step 6's write */
#ifdef BROKEN_A_NOT_MAX
#define NEW_A          T
#else
#define NEW_A          MAX(A, T)
#endif

/* collection's rule: never a pinned plan, nor the newest published one (G), nor a live one */
#define CANDIDATE(p)   (!removed[p] && !PINNED(p) && (p) != G)
#if defined(BROKEN_LIVE_NO_APPLIED)
/* the live set built without A: the stamps (not eff) and B */
#define LIVE(p)        ((p) == g[0] || (p) == g[1] || (p) == B)
#elif defined(BROKEN_COLLECT_BELOW_B)
/* no live set: everything below B goes */
#define LIVE(p)        ((p) >= B)
#elif defined(LIVE_NO_APPLIED_MARK)
#define LIVE(p)        ((p) == EFF(0) || (p) == EFF(1) || (p) == B)
#elif defined(LIVE_NO_BEGUN_MARK)
#define LIVE(p)        ((p) == EFF(0) || (p) == EFF(1) || (p) == A)
#elif defined(LIVE_STAMPS_AND_MARKS)
/* the stamps instead of eff, with A and B: a superset (eff(e) is g_e or A) */
#define LIVE(p)        ((p) == g[0] || (p) == g[1] || (p) == A || (p) == B)
#else
/* L = { eff(e) } UNION { A, B } */
#define LIVE(p)        ((p) == EFF(0) || (p) == EFF(1) || (p) == A || (p) == B)
#endif
#define COLLECTABLE(p) (CANDIDATE(p) && !(LIVE(p)))

/* I and S3' for every endpoint: called in every step that changes A, g, rec or removed */
inline check_inv()
{
#ifdef NO_STEP_ASSERTS
  skip                  /* only the never claim (-DGLOBAL_LTL) is left to catch a violation */
#else
  assert(I_records_match_eff && rec[0] == CONTENT(EFF(0), 0));
  assert(I_records_match_eff && rec[1] == CONTENT(EFF(1), 1));
  assert(S3_eff_not_deleted && !removed[EFF(0)]);
  assert(S3_eff_not_deleted && !removed[EFF(1)])
#endif
}

#ifdef GLOBAL_LTL
/* the same, at every step (the LTL parser takes no conditional expressions: eff spelt out) */
#define OK_AT(e, c, h)   (rec[e] == CONT(c, h) && !removed[h])
#define OK_E(e, c)       ((g[e] >= A && OK_AT(e, c, g[e])) || (g[e] < A && OK_AT(e, c, A)))
ltl inv_global { [] (I_records_match_eff && S3_eff_not_deleted && OK_E(0, C0) && OK_E(1, C1)) }
#endif

/* back to read (B moved): diff inputs and mode dropped, the target kept */
inline drop_inputs()
{
  pins[_pid] = BIT(T); nx = 0; full_apply = 0;
#ifdef SKIP_MISSING_INPUT
  skipped = 0;
#endif
  a0 = 0; b0 = 0
}

/* end of an apply (done, nothing to do, stale): unpin, pick again with the same lease */
inline release()
{
  pins[_pid] = 0; nx = 0; full_apply = 0;
#ifdef SKIP_MISSING_INPUT
  skipped = 0;
#endif
  T = 0; a0 = 0; b0 = 0; todo = 0; e = 0; rg = 0; rf = 0
}

/* crash or fenced: everything dropped, a new grant is needed (f is kept only for symmetry) */
inline stop()
{
  release(); st = acquire
}

/* full mode: no diff input needed, so the input pins are dropped */
inline go_full()
{
  pins[_pid] = BIT(T); nx = 0; full_apply = 1;
#ifdef SKIP_MISSING_INPUT
  skipped = 0;
#endif
  st = begin
}

/* the next diff input to pin: A0, then A0 + 1 .. B0, T excluded (pinned since the pick) */
inline next_pin()
{
  nx++;
  if
  :: nx > b0 || nx >= T -> nx = 0; st = begin
  :: else -> skip
  fi
}

/* the apply's endpoint set is exhausted: raise A (or, A raised early, finish) */
inline next_endpoint()
{
  rg = 0; rf = 0; e = 0;
  if
  :: todo != 0 -> st = rd
#ifdef BROKEN_A_BEFORE_WRITES
  :: todo == 0 -> printf("E%d done: gen %d\n", _pid, T); release(); st = pick
#else
  :: todo == 0 -> st = set_applied
#endif
  fi
}

/* the plans the diff reads, and T, are present (diff mode); T is present (full mode) */
inline check_inputs()
{
  assert(S3_inputs_present && !removed[T] && (full_apply || !INPUT_REMOVED))
}

inline compute_d()
{
  check_inputs();
  todo = (IN_D(0) -> 1 : 0) | (IN_D(1) -> 2 : 0);
  printf("E%d D = %d (A0 %d, B0 %d, T %d, full %d)\n", _pid, todo, a0, b0, T, full_apply);
#ifdef BROKEN_A_BEFORE_WRITES
  st = set_applied
#else
  next_endpoint()
#endif
}

/* the successful commit CAS */
inline write_stamp()
{
  printf("E%d commit: endpoint %d (%d,%d) -> (%d,%d), records %d -> %d\n",
         _pid, e, g[e], fe[e], T, f, rec[e], CONTENT(T, e));
  CHECK_S2();
  assert(S1_eff_no_regression && MAX(T, A) >= EFF(e));
  check_inputs();
  g[e] = T; fe[e] = f; rec[e] = CONTENT(T, e);
  check_inv();
  todo = todo & (3 - (1 << e));
  next_endpoint()
}

inline read_decide()
{
  rg = g[e]; rf = fe[e];
  if
  :: rg >= T -> todo = todo & (3 - (1 << e)); next_endpoint()     /* stale */
  :: rg < T && STAMP_FENCED(rf) ->
     printf("E%d read: endpoint %d fence %d > mine %d: fenced\n", _pid, e, rf, f); stop()
  :: rg < T && !STAMP_FENCED(rf) -> st = cas
  fi
}

#define PICK(t) :: atomic { st == pick && !removed[t] -> T = t; pins[_pid] = BIT(t); \
                           printf("E%d pick: gen %d\n", _pid, t); st = read }

active [E] proctype enactor()
{
  mtype st = acquire;
  byte f;                /* lease token                                                       */
  byte T;                /* target plan (0: none)                                             */
  byte a0, b0;           /* A and B as read                                                   */
  byte nx;               /* the next diff input to pin                                        */
  bit full_apply;        /* full mode: D = every endpoint                                     */
#ifdef SKIP_MISSING_INPUT
  byte skipped;          /* begun plans whose pin was refused and ignored: bit h              */
#endif
  byte todo;             /* D not yet done: bit e                                             */
  byte e;                /* endpoint being written                                            */
  byte rg, rf;           /* stamp read, expected by the CAS                                   */

end_steps:
  do
  /* ---- crash: stop anywhere; coming back needs a new grant ---- */
#ifndef NO_CRASH
  :: atomic { st != acquire ->
              printf("E%d crash\n", _pid); stop() }
#endif

  /* ---- acquire: a new grant, token = last + 1 ---- */
  :: atomic { st == acquire && grants < MAX_GRANTS && (f != 0 || _pid == FIRST_OK) ->
              if
              :: f == 0 -> started++
              :: else -> skip
              fi;
              grants++; f = TOKEN(grants);
              printf("E%d acquire: token %d\n", _pid, f);
              st = raise_floor }

  /* ---- raise_floor: F = max(F, token) ---- */
  :: atomic { st == raise_floor ->
              if
              :: F < f -> F = f
              :: else -> skip
              fi;
              st = pick }

  /* ---- pick: any published plan, pinned ---- */
  PICK(1)
  PICK(2)
#if G >= 3
  PICK(3)
#endif
#if G >= 4
  PICK(4)
#endif

  /* ---- read: A0, B0 in one read; steps 1 and 2 ---- */
  :: atomic { st == read ->
              a0 = A; b0 = B;
              if
              :: T <= a0 ->
                 printf("E%d read: gen %d <= A %d: nothing to do\n", _pid, T, a0);
                 release(); st = pick
              :: T > a0 && b0 > T ->
                 printf("E%d read: B %d > gen %d: stale\n", _pid, b0, T);
                 release(); st = pick
              :: T > a0 && b0 <= T ->
                 printf("E%d read: A0 %d, B0 %d, gen %d\n", _pid, a0, b0, T);
#ifdef NO_INPUT_PINS
                 st = begin
#else
                 nx = a0; st = pin
#endif
              fi }

#ifndef NO_INPUT_PINS
  /* ---- pin: the diff's inputs, one plan a step; refused on a deleted plan: full mode ---- */
  :: atomic { st == pin ->
              if
              :: removed[nx] ->
#ifdef SKIP_MISSING_INPUT
                 if
                 :: nx == a0 ->
                    printf("E%d pin: base gen %d is gone: full apply\n", _pid, nx); go_full()
                 :: nx != a0 ->
                    printf("E%d pin: gen %d is gone: left out of the diff\n", _pid, nx);
                    skipped = skipped | BIT(nx); next_pin()
                 fi
#else
                 printf("E%d pin: gen %d is gone: full apply\n", _pid, nx); go_full()
#endif
              :: !removed[nx] -> pins[_pid] = pins[_pid] | BIT(nx); next_pin()
              fi }
#ifndef NO_FULL_CHOICE
  /* any time before D is computed, the enactor may choose full mode (a long diff) */
  :: atomic { st == pin ->
              printf("E%d full apply by choice\n", _pid); go_full() }
#endif
#endif

  /* ---- begin: step 3 (B := T) and step 4 (D) ---- */
  :: atomic { st == begin ->
#ifdef BROKEN_NO_BEGIN
              compute_d()
#else
              if
              :: b0 < T && BELOW_FLOOR ->
                 printf("E%d begin: token %d < floor %d: fenced\n", _pid, f, F); stop()
              :: b0 < T && !BELOW_FLOOR && B != b0 ->
                 printf("E%d begin: B %d is no longer %d: read again\n", _pid, B, b0);
                 drop_inputs(); st = read
              :: b0 < T && !BELOW_FLOOR && B == b0 ->
                 CHECK_S2();
                 printf("E%d begin: B %d -> %d\n", _pid, B, T);
                 B = T; compute_d()
              :: b0 == T -> compute_d()                      /* join a begun apply of T */
              fi
#endif
            }

  /* ---- rd: step 5, read the stamp of any endpoint still in D ---- */
  :: atomic { st == rd && (todo & 1) -> e = 0; read_decide() }
  :: atomic { st == rd && (todo & 2) -> e = 1; read_decide() }

  /* ---- cas: the store's commit, one CAS of stamp and records ---- */
  :: atomic { st == cas ->
              if
              :: BELOW_FLOOR ->
                 printf("E%d commit: endpoint %d token %d < floor %d: fenced\n", _pid, e, f, F); stop()
              :: !BELOW_FLOOR && g[e] >= T ->                      /* stale */
                 todo = todo & (3 - (1 << e)); next_endpoint()
              :: !BELOW_FLOOR && g[e] < T && STAMP_FENCED(fe[e]) ->
                 printf("E%d commit: endpoint %d fenced by %d\n", _pid, e, fe[e]); stop()
              :: !BELOW_FLOOR && g[e] < T && !STAMP_FENCED(fe[e]) && !(g[e] == rg && fe[e] == rf) ->
                 rg = 0; rf = 0; st = rd                      /* conflict: read again */
              :: !BELOW_FLOOR && g[e] == rg && fe[e] == rf -> write_stamp()
              fi }

  /* ---- set_applied: step 6, A := max(A, T) ---- */
  :: atomic { st == set_applied ->
              if
              :: BELOW_FLOOR ->
                 printf("E%d set_applied: token %d < floor %d: fenced\n", _pid, f, F); stop()
              :: else ->
                 CHECK_S2();
                 printf("E%d set_applied: A %d -> %d\n", _pid, A, NEW_A);
                 assert(S1_eff_no_regression && MAX(g[0], NEW_A) >= EFF(0));
                 assert(S1_eff_no_regression && MAX(g[1], NEW_A) >= EFF(1));
                 A = NEW_A;
                 check_inv();
#ifdef BROKEN_A_BEFORE_WRITES
                 next_endpoint()
#else
                 release(); st = pick
#endif
              fi }
  od
}

inline delete_plan(p)
{
  printf("collector: delete gen %d (A %d, B %d, stamps %d %d)\n", p, A, B, g[0], g[1]);
  removed[p] = true;
  check_inv()
}

#define COLLECT(p) :: atomic { COLLECTABLE(p) -> delete_plan(p) }

/* collector: deletes any unpinned plan that is neither the newest nor live, at any moment */
active proctype collector()
{
end_collect:
  do
  COLLECT(0)
  COLLECT(1)
  COLLECT(2)
#if G >= 3
  COLLECT(3)
#endif
#if G >= 4
  COLLECT(4)
#endif
  od
}
