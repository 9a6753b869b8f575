/*
 * naive.pml: the 2025 DNS automation (README; docs/model.md), as rebuilt on purpose by
 * include/planfence/sim/naive_enactor.hpp over basic_memory_store<..., unconditional> and
 * basic_plan_registry<collection_check::none>. Spin must find a counterexample here.
 *
 * Actors
 *   enactor[E]   naive_enactor::step(); `st` is naive_state:
 *     pick_plan       registry pin_latest(): the newest published plan P (only if newer than
 *                     what this enactor applied, and not one it already found stale).
 *     check_fresh     the ONE-TIME freshness check: P must be newer than the plan the store says
 *                     was applied (the 2025 marker; the C++ rebuild reads the first endpoint's
 *                     stamp for it). Nothing later looks again (fault 1).
 *     read_endpoint   read what the endpoint serves; if its plan is gone the enactor STOPS and
 *                     stays stopped (the wedge, fault 4).
 *     write_endpoint  one atomic but UNCONDITIONAL write of P to the endpoint: no compare, no
 *                     fence (fault 2).
 *     clean_up        after the run, delete every plan more than THRESHOLD generations older
 *                     than P, looking at generations only: not at what endpoints serve, not at
 *                     what other enactors apply (fault 3). One step per deleted plan
 *                     (collect_one under the registry mutex).
 *   planner      publishes generations 1..G in order.
 * Between any two steps an enactor may be delayed for any number of steps of the others (the
 * 2025 enactor was "badly delayed and kept retrying"); Spin explores every interleaving.
 *
 * Endpoints refer to plan-owned records: served[e] is the generation whose records endpoint e
 * points at; when that plan is deleted the endpoint serves no records at all (the outage).
 * Leases do not appear: the 2025 lock only made each per-endpoint write atomic, which the atomic
 * write step models, and nothing fenced a writer whose check had gone stale.
 *
 * Properties (assertion texts name the guarantee)
 *   S1  at every write: the generation the endpoint serves never decreases.
 *   S3  at every deletion: the plan is not served by an endpoint, not held by an in-flight apply,
 *       not among the newest RETAIN_K generations. Globally, in every reachable state
 *       (ltl s3_global): no endpoint serves a deleted plan, no in-flight apply holds one.
 *
 * Build variants
 *   -DNAIVE_OUTAGE    check only "an endpoint serves a deleted plan" (S3 at deletion and the
 *                     global form), leaving out S1 and the in-flight and retention checks that
 *                     the default search trips first: the counterexample is then the October
 *                     2025 sequence itself (a delayed enactor's old plan becomes live, a newer
 *                     enactor's clean-up deletes it, the endpoint serves no records).
 *   -DNO_S3_AT_DELETE leave out the S3 assertions at deletion: the violation must then be caught
 *                     by the global LTL property alone (shows that it has teeth).
 *   -DNO_SYMMETRY     explore every order of the enactors' first picks (see `started`).
 */

#ifndef G
#define G          5    /* generations the planner publishes: 1..G                             */
#endif
#ifndef E
#define E          3    /* enactors (1..4)                                                     */
#endif
#ifndef N
#define N          2    /* endpoints (1..3)                                                    */
#endif
#ifndef THRESHOLD
#define THRESHOLD  2    /* naive_config::cleanup_threshold (3 in the C++ default): clean_up    */
                        /* deletes generations g with g + THRESHOLD < P                        */
#endif
#ifndef RETAIN_K
#define RETAIN_K   2    /* S3: the newest RETAIN_K generations must never be deleted           */
#endif

/* Constant names that appear in the assertion texts (hidden: not part of the state vector). */
hidden byte S1_no_regression = 1;
hidden byte S3_not_served_at_delete = 1;
hidden byte S3_not_in_flight_at_delete = 1;
hidden byte S3_not_retained_at_delete = 1;
hidden byte S3_live_plan_never_removed = 1;

byte published;          /* registry latest_: newest published generation (0: none)            */
bool removed[G + 1];     /* plan g deleted: its records are gone (index 0 unused)               */
byte served[N];          /* store: generation whose records endpoint e refers to (0: none)      */
byte holding[E];         /* ghost: the plan enactor i is applying (0: none)                     */

/* Symmetry reduction. The enactors run identical code and the properties treat them alike, so
 * any execution is, up to renaming the enactors, one in which they make their FIRST pick in pid
 * order: enactor i may make its first pick only when enactors 0..i-1 have made theirs. `started`
 * is a function of the enactors' local states, so it adds no states. */
byte started;
#ifdef NO_SYMMETRY
#define FIRST_OK _pid      /* -DNO_SYMMETRY: any order (to check the reduction) */
#else
#define FIRST_OK started
#endif

mtype = { pick_plan, check_fresh, read_endpoint, write_endpoint, clean_up };

/* S3, global form */
#if N == 1
#define SERVES_REMOVED   (removed[served[0]])
#elif N == 2
#define SERVES_REMOVED   (removed[served[0]] || removed[served[1]])
#elif N == 3
#define SERVES_REMOVED   (removed[served[0]] || removed[served[1]] || removed[served[2]])
#else
#error "N must be 1..3 (extend SERVES_REMOVED)"
#endif
#ifdef NAIVE_OUTAGE
#define HOLDS_REMOVED    false
#elif E == 1
#define HOLDS_REMOVED    (removed[holding[0]])
#elif E == 2
#define HOLDS_REMOVED    (removed[holding[0]] || removed[holding[1]])
#elif E == 3
#define HOLDS_REMOVED    (removed[holding[0]] || removed[holding[1]] || removed[holding[2]])
#elif E == 4
#define HOLDS_REMOVED    (removed[holding[0]] || removed[holding[1]] || removed[holding[2]] || removed[holding[3]])
#else
#error "E must be 1..4 (extend HOLDS_REMOVED)"
#endif

ltl s3_global { [] (S3_live_plan_never_removed && !SERVES_REMOVED && !HOLDS_REMOVED) }

/* Enactors are declared first so that their _pid is 0..E-1 and doubles as the enactor id. */
active [E] proctype enactor()
{
  mtype st = pick_plan;  /* state_                                                             */
  byte p;                /* plan_: the generation being applied (0: none)                      */
  byte applied;          /* applied_                                                           */
  byte checked;          /* checked_: a plan found stale by check_fresh                        */
  byte e;                /* cursor_                                                            */
  byte c;                /* clean_up: candidate generation                                     */
  byte i;                /* loop index of the S3 check                                         */

end_steps:
  do
  /* ---- pick_plan: the newest plan ---- */
  :: atomic { st == pick_plan && published > applied && published != checked &&
              (applied != 0 || checked != 0 || _pid == FIRST_OK) ->
              if
              :: applied == 0 && checked == 0 -> started++   /* first pick: see `started` */
              :: else -> skip
              fi;
              p = published; holding[_pid] = p;
              printf("E%d pick_plan: gen %d\n", _pid, p);
              st = check_fresh }

  /* ---- check_fresh: the one-time check against the applied marker ---- */
  :: atomic { st == check_fresh ->
              if
              :: served[0] < p ->
                 printf("E%d check_fresh: gen %d > applied %d, go\n", _pid, p, served[0]);
                 e = 0; st = read_endpoint
              :: else ->
                 checked = p; holding[_pid] = 0; p = 0; st = pick_plan
              fi }

  /* ---- read_endpoint: a plan gone under an endpoint stops the enactor for good ---- */
  :: atomic { st == read_endpoint ->
              if
              :: removed[served[e]] ->
                 printf("E%d read_endpoint: endpoint %d serves deleted gen %d: STOPPED\n", _pid, e, served[e]);
                 holding[_pid] = 0; p = 0; e = 0; break
              :: else -> st = write_endpoint
              fi }

  /* ---- write_endpoint: atomic, unconditional ---- */
  :: atomic { st == write_endpoint ->
              printf("E%d write_endpoint: endpoint %d gen %d -> %d\n", _pid, e, served[e], p);
#ifndef NAIVE_OUTAGE
              assert(S1_no_regression && p >= served[e]);
#endif
              served[e] = p; e++;
              if
              :: e < N -> st = read_endpoint
              :: else ->                                     /* finish_run */
                 applied = p; holding[_pid] = 0; e = 0; c = 1; st = clean_up
              fi }

  /* ---- clean_up: relative to the plan just applied, blind to what is live ---- */
  :: atomic { st == clean_up ->
              if
              :: c + THRESHOLD >= applied -> c = 0; p = 0; st = pick_plan
              :: c + THRESHOLD < applied && removed[c] -> c++
              :: c + THRESHOLD < applied && !removed[c] ->
                 printf("E%d clean_up: delete gen %d (applied %d)\n", _pid, c, applied);
#ifndef NO_S3_AT_DELETE
                 i = 0;
                 do
                 :: i < N -> assert(S3_not_served_at_delete && served[i] != c); i++
                 :: else -> break
                 od;
#ifndef NAIVE_OUTAGE
                 i = 0;
                 do
                 :: i < E -> assert(S3_not_in_flight_at_delete && holding[i] != c); i++
                 :: else -> break
                 od;
                 assert(S3_not_retained_at_delete && c + RETAIN_K <= published);
#endif
                 i = 0;
#endif
                 removed[c] = true; c++
              fi }
  od
}

/* planner: publishes generations 1..G in order */
active proctype planner()
{
  do
  :: atomic { published < G -> published++; printf("planner publish gen %d\n", published) }
  :: atomic { published == G -> break }
  od
}
