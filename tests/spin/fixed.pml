/*
 * fixed.pml: planfence's commit and collection protocol, as implemented by
 * include/planfence/enactor.hpp (the step machine), registry.hpp (pins, close, collect),
 * memory_store.hpp (stamp words, fence floor) and lease.hpp (fenced leases).
 * Spin must verify it EXHAUSTIVELY. docs/model.md maps every step to the C++ code.
 *
 * Granularity. A step of the model is one access to shared state (one load, one CAS), or a
 * C++ operation whose inner accesses are validated by its last one. Merged on purpose (each
 * merge only removes a state that no other actor can observe, or a failed attempt that changes
 * nothing and is retried; docs/model.md gives the argument for each):
 *   - pin_latest() is one step: its linearisation point is the pin CAS (R5); a failed attempt
 *     (plan closed meanwhile) changes nothing and is retried with the new latest.
 *   - finish_run()'s unpin happens in the step that finishes the last endpoint.
 *   - the registry's reopen happens in the scan step that finds the plan live (a closed old plan
 *     is never the latest, so no pin attempt can observe the difference).
 *   - the store's commit is one step (fence floor check and stamp CAS together, as an etcd
 *     transaction or a DNS UPDATE prerequisite does it). -DSPLIT_COMMIT splits it as the memory
 *     store does: the fence-floor load (M1) is a step of its own before the CAS (M3).
 *   - raise_fence is one step (the floor's CAS-max (M4) and every endpoint's fence CAS-max (M5)
 *     together). With -DSPLIT_COMMIT or -DFINE_GRAIN (or -DSPLIT_RAISE alone) it is split as the
 *     memory store does it: the floor first, then one step per endpoint; raise_fence returns
 *     after the last endpoint's step.
 * -DFINE_GRAIN undoes the first three merges (pin_latest as a load of latest_ then a pin CAS
 * that may fail, finish_run and reopen as steps of their own); with -DSPLIT_COMMIT as well the
 * model is at the C++ code's own grain. docs/model.md gives the cost of checking it.
 * Never merged: the stamp read and the commit CAS (the time-of-check to time-of-use window the
 * CAS closes), the lease grant and raise_fence, the close of a plan, each endpoint load of the
 * live-set scan, and the unlink.
 *
 * Symmetry. The enactors are identical, so the model only explores executions in which they
 * take their first lease grant in pid order (see `started`); every other execution is one of
 * these with the enactors renamed. This divides the state space by about 6 for 3 enactors;
 * -DNO_SYMMETRY turns it off (the result must be the same).
 *
 * Actors
 *   enactor[E]   planfence::enactor, one `st` value per enactor_state:
 *     acquire_lease  authority acquire(): a new grant whose fence token is one larger than the
 *                    last. A grant is possible at any moment (the previous one may have expired
 *                    at any moment); the previous holder is not told.
 *     raise_fence    store raise_fence(token): floor = max(floor, token) (M4), then for every
 *                    endpoint stamp.fence = max(stamp.fence, token), generation unchanged (M5).
 *                    A commit that passed its floor check (M1) before the raise then finds its
 *                    stamp word changed: its CAS fails and reports fenced.
 *     pin_plan       registry pin_latest(): the newest plan, pinned (R2 + R5); the pin fails on
 *                    a closed or removed plan. Nothing newer than what this enactor last
 *                    applied: stay idle.
 *     read_stamp     store read_stamp() (M2), then decide:
 *                      stamp.gen >= P.gen     -> stale: next endpoint
 *                      stamp.fence > my fence -> fenced: lose_lease
 *                      otherwise              -> commit
 *     commit         store commit(expected = stamp read, desired = (P.gen, my fence)):
 *                    refused (fenced) if my fence < floor; otherwise a CAS of the whole stamp
 *                    word, which reports what a changed word reveals: stale (gen >= P.gen),
 *                    fenced (fence > mine) or conflict. Conflict: read_stamp again, at most
 *                    CONFLICT_RETRIES_MAX times, then the endpoint is left to the next run (the
 *                    run is incomplete and does not collect). After the last endpoint the plan
 *                    is unpinned (R3) and a complete run goes to collect.
 *     collect        authority check(): only the current holder collects, else lose_lease.
 *                    (The model lets a holder whose grant expired without being superseded yet
 *                    collect; the C++ check refuses it too. Allowing more is the safe side.)
 *                    registry collect() under the registry mutex (so no publish can happen
 *                    meanwhile: `published` is the snapshot), keep the newest K, and for every
 *                    older candidate C:
 *       close          registry: CAS of C's pin word 0 -> closed (R4); fails if pinned: skip C.
 *       scan           store live_generations(): one load per endpoint (M2); an endpoint
 *                      serving C -> reopen C (clear `closed`) and keep it.
 *       unlink         C and its records are gone.
 *                    Commits of C happen only while C is pinned, and no pin of C succeeds once
 *                    it is closed, so no endpoint can newly start serving C after the close:
 *                    the scan that follows it is the atomic check S3 asks for.
 *     lose_lease     before any step, an enactor whose lease was superseded may notice it (its
 *                    clock says the lease is over): it unpins and asks for a lease again. It may
 *                    equally not notice (clock skew, a pause between the check and the store
 *                    call) and carry on with its old token: Spin explores both.
 *   planner      registry publish() of generations 1..G in order, under the registry mutex.
 *
 * Delays: any actor may be suspended between any two steps for any number of steps of the
 * others; Spin explores every interleaving.
 *
 * Properties (assertion texts name the guarantee)
 *   S1  at every successful commit CAS: new gen >= gen the endpoint served.
 *   S2  at every successful commit CAS: my fence >= every fence the store has accepted, the
 *       floor included (s2_accepted is the largest token raise_fence or a commit has put in).
 *       Also asserted there: my fence >= the fence the endpoint carries (per endpoint).
 *       A raise counts from the instant raise_fence returns (after its last endpoint). This
 *       store-wide form holds at the memory store's grain (-DSPLIT_COMMIT) only because
 *       raise_fence raises every stamp (M5); with -DFLOOR_ONLY_RAISE it fails (docs/model.md,
 *       "S2 and the memory store"). -DS2_ENDPOINT_ONLY checks only the per-endpoint form.
 *   S3  at unlink: no endpoint serves C, no in-flight apply holds C, C is not among the newest K
 *       published. Globally, in every reachable state (ltl s3_global): no endpoint serves a
 *       removed plan and no in-flight apply holds one.
 *
 * Broken variants (each must give a counterexample: the properties have teeth)
 *   -DBROKEN_COMMIT   commit_rule::check_then_write: the commit checks the stamp, then stores
 *                     it in a separate step (commit_store)                            -> S1
 *   -DBROKEN_FENCE    commit_rule::ignore_fence: no fence checks at all (and, as in the C++,
 *                     raise_fence raises the floor only)                              -> S2
 *   -DBROKEN_COLLECT  collection_check::ignore_live: no live-set scan after the close  -> S3
 *   -DBROKEN_PIN      collection_check::ignore_pins: the close ignores the pin count    -> S3
 *   -DFLOOR_ONLY_RAISE  raise_fence as it was before the M5 fix: the floor only. With
 *                     -DSPLIT_COMMIT, a commit past its floor check lands after the raise -> S2
 *                     (in the coarse model the commit's floor check and CAS are one step, so
 *                     the floor alone suffices there and it verifies)
 * A broken variant may break several guarantees; the search reports the first it meets. To see
 * a particular one, leave the others out:
 *   -DNO_S2           no S2 assertion (BROKEN_COMMIT breaks S2 too, and meets it first)
 *   -DNO_S3_AT_UNLINK no S3 assertions at unlink: only the global LTL property is left to catch
 *                     a live plan being removed (shows that it has teeth)
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
#ifndef K
#define K          2    /* retention_policy::keep_newest                                       */
#endif
#ifndef MAX_GRANTS
#define MAX_GRANTS 3    /* lease grants, i.e. fence tokens 1..MAX_GRANTS (bounds the model)    */
#endif
#ifndef CONFLICT_RETRIES_MAX
#define CONFLICT_RETRIES_MAX 1  /* enactor_config::conflict_retries_max (8 in the C++ default) */
#endif

/* raise_fence's per-endpoint stamp raises (M5) are steps of their own at the C++ grain */
#if defined(SPLIT_COMMIT) || defined(FINE_GRAIN)
#ifndef SPLIT_RAISE
#define SPLIT_RAISE
#endif
#endif

#define CLOSED     255  /* pin word of a closed plan (the `closed` bit; the count is then 0)    */
#define NOBODY     255  /* no lease holder yet / registry mutex free                            */

/* Constant names that appear in the assertion texts (hidden: not part of the state vector). */
hidden byte S1_no_regression = 1;
hidden byte S2_fencing = 1;
hidden byte S3_not_served_at_unlink = 1;
hidden byte S3_not_in_flight_at_unlink = 1;
hidden byte S3_not_retained_at_unlink = 1;
hidden byte S3_live_plan_never_removed = 1;

/* registry */
byte published;                /* latest_: newest published generation (0: none)            */
byte pins[G + 1];              /* pin word: pin count, or CLOSED                              */
bool removed[G + 1];           /* collected: unlinked, its records gone (index 0 unused)      */
byte registry_mutex = NOBODY;  /* taken by publish and by collect                             */

/* store: one 64-bit stamp word per endpoint, written only as a whole */
byte stamp_gen[N];             /* stamp.gen: the generation the endpoint serves (0: nothing)  */
byte stamp_fence[N];           /* stamp.fence                                                 */
byte fence_floor;              /* raise_fence floor                                           */

/* lease authority */
byte holder = NOBODY;          /* enactor holding the current grant                           */
byte grants;                   /* last token granted                                          */

/* Symmetry reduction. The enactors run identical code and the properties treat them alike, so
 * any execution is, up to renaming the enactors, one in which they take their FIRST grant in
 * pid order: enactor i may take its first grant only when enactors 0..i-1 have taken theirs.
 * `started` counts the enactors that have held a grant; it is a function of their local states
 * (myfence != 0), so it adds no states, and the search it prunes is a mirror image of one kept. */
byte started;
#ifdef NO_SYMMETRY
#define FIRST_OK _pid      /* -DNO_SYMMETRY: any order (to check the reduction) */
#else
#define FIRST_OK started
#endif

/* ghosts: not in the C++ code, they only state the properties */
byte holding[E];               /* generation enactor i holds pinned for its apply (0: none)   */
byte s2_accepted;              /* largest token the store has accepted (floor or commit)      */

mtype = { acquire_lease, raise_fence, raise_stamp, pin_plan, try_pin, read_stamp, commit, commit_cas,
          commit_store, finish_run, collect, close, scan, reopen, unlink };

/* S3, global form: no endpoint serves a removed plan, no in-flight apply holds one. */
#if N == 1
#define SERVES_REMOVED   (removed[stamp_gen[0]])
#elif N == 2
#define SERVES_REMOVED   (removed[stamp_gen[0]] || removed[stamp_gen[1]])
#elif N == 3
#define SERVES_REMOVED   (removed[stamp_gen[0]] || removed[stamp_gen[1]] || removed[stamp_gen[2]])
#else
#error "N must be 1..3 (extend SERVES_REMOVED)"
#endif
#if E == 1
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

/* plan_.reset(): release the pin (R3) */
inline unpin()
{
  pins[p]--; holding[_pid] = 0; p = 0
}

/* finish_run(): unpin; a complete run goes on to collect */
inline finish_run_body()
{
  if
  :: run_complete -> applied = p; st = collect
  :: else -> run_complete = true; st = pin_plan
  fi;
  unpin()
}

/* next_endpoint(): the endpoint is done */
inline next_endpoint()
{
  rg = 0; rf = 0; conflicts = 0; e++;
  if
  :: e < N -> st = read_stamp
  :: else ->
     e = 0;
#ifdef FINE_GRAIN
     st = finish_run                                  /* a step of its own */
#else
     finish_run_body()
#endif
  fi
}

/* lose_lease(): drop the plan, ask for a lease again */
inline lose_lease()
{
  if
  :: st == read_stamp || st == commit || st == commit_cas || st == commit_store ||
     st == finish_run -> unpin()
  :: else -> p = 0                                   /* pin_plan, try_pin, collect: no pin */
  fi;
  rg = 0; rf = 0; e = 0; conflicts = 0; run_complete = true; st = acquire_lease
}

/* the successful commit: S1 and S2 checked at the instant the stamp word changes */
inline write_stamp()
{
  printf("E%d commit: endpoint %d (%d,%d) -> (%d,%d)\n", _pid, e, stamp_gen[e], stamp_fence[e], p, myfence);
  assert(S1_no_regression && p >= stamp_gen[e]);
#if defined(S2_ENDPOINT_ONLY)
  assert(S2_fencing && myfence >= stamp_fence[e]);
#elif !defined(NO_S2)
  assert(S2_fencing && myfence >= s2_accepted);      /* store-wide */
  assert(S2_fencing && myfence >= stamp_fence[e]);   /* and per endpoint */
#endif
  stamp_gen[e] = p; stamp_fence[e] = myfence;
  if
  :: s2_accepted < myfence -> s2_accepted = myfence
  :: else -> skip
  fi;
  next_endpoint()
}

/* raise_fence, endpoint s: CAS-max of the stamp word's fence field, generation unchanged (M5).
 * (The C++ loop loads the word and CASes it, retrying on a change: the CAS validates the load.) */
inline raise_stamp_fence()
{
  if
  :: stamp_fence[s] < myfence ->
     printf("E%d raise_fence: endpoint %d (%d,%d) -> (%d,%d)\n", _pid, s, stamp_gen[s], stamp_fence[s], stamp_gen[s], myfence);
     stamp_fence[s] = myfence
  :: else -> skip
  fi
}

/* raise_fence returns: from here on S2 says no commit with a smaller token may land */
inline raise_returns()
{
  if
  :: s2_accepted < myfence -> s2_accepted = myfence
  :: else -> skip
  fi;
  st = pin_plan
}

/* Enactors are declared first so that their _pid is 0..E-1 and doubles as the enactor id. */
active [E] proctype enactor()
{
  mtype st = acquire_lease;  /* state_                                                        */
  byte myfence;              /* lease_->fence                                                 */
  byte applied;              /* applied_: newest generation this enactor fully applied        */
  byte p;                    /* plan_: the generation pinned for this run (0: none)           */
  byte e;                    /* cursor_: endpoint index                                       */
  byte rg, rf;               /* seen_: the stamp read, expected by the commit                 */
  byte conflicts;            /* conflicts_ on endpoint e                                      */
  bool run_complete = true;  /* run_complete_                                                 */
  byte c;                    /* collect: candidate generation                                 */
  byte s;                    /* collect: endpoint being scanned                               */
  byte i;                    /* loop index of the S3 check                                    */

end_steps:
  do
  /* ---- lease upkeep: a superseded lease may be noticed before any step ---- */
  :: atomic { (st == pin_plan || st == try_pin || st == read_stamp || st == commit ||
               st == commit_cas || st == commit_store || st == finish_run ||
               (st == collect && c == 0)) && holder != _pid ->
              printf("E%d lose_lease (fence %d superseded)\n", _pid, myfence);
              lose_lease() }

  /* ---- acquire_lease: a new grant, token = last + 1 ---- */
  :: atomic { st == acquire_lease && grants < MAX_GRANTS && (myfence != 0 || _pid == FIRST_OK) ->
              if
              :: myfence == 0 -> started++                   /* symmetry: see `started` */
              :: else -> skip
              fi;
              grants++; myfence = grants; holder = _pid;
              printf("E%d acquire_lease: fence %d\n", _pid, myfence);
              st = raise_fence }

  /* ---- raise_fence: floor = max(floor, my token) (M4) ... ---- */
  :: atomic { st == raise_fence ->
              if
              :: fence_floor < myfence ->
                 fence_floor = myfence;
                 printf("E%d raise_fence: floor %d\n", _pid, myfence)
              :: else -> skip
              fi;
#if defined(FLOOR_ONLY_RAISE) || defined(BROKEN_FENCE)
              raise_returns()                                /* the floor only */
#elif defined(SPLIT_RAISE)
              s = 0; st = raise_stamp                        /* then each endpoint, a step each */
#else
              /* ... and every endpoint's stamp fence = max(fence, my token) (M5), merged */
              s = 0;
              do
              :: s < N -> raise_stamp_fence(); s++
              :: else -> break
              od;
              s = 0;
              raise_returns()
#endif
            }

#if defined(SPLIT_RAISE) && !defined(FLOOR_ONLY_RAISE) && !defined(BROKEN_FENCE)
  /* ---- ... then, one step per endpoint: CAS-max of the stamp's fence field (M5) ---- */
  :: atomic { st == raise_stamp ->
              raise_stamp_fence();
              s++;
              if
              :: s == N -> s = 0; raise_returns()
              :: else -> skip
              fi }
#endif

#ifndef FINE_GRAIN
  /* ---- pin_plan: pin_latest(), refused on a closed or removed plan ---- */
  :: atomic { st == pin_plan && published > applied ->
              if
              :: pins[published] != CLOSED && !removed[published] ->
                 p = published; pins[p]++; holding[_pid] = p;
                 printf("E%d pin_plan: gen %d\n", _pid, p);
                 e = 0; st = read_stamp
              :: else -> skip                                /* closed: retry */
              fi }
#else
  /* ---- pin_plan: pin_latest() loads latest_ (R2) ... ---- */
  :: atomic { st == pin_plan && published > applied ->
              p = published; st = try_pin }
  /* ---- ... then the pin CAS (R5), refused on a closed or removed plan: retry ---- */
  :: atomic { st == try_pin ->
              if
              :: pins[p] != CLOSED && !removed[p] ->
                 pins[p]++; holding[_pid] = p;
                 printf("E%d pin_plan: gen %d\n", _pid, p);
                 e = 0; st = read_stamp
              :: else ->
                 printf("E%d pin_plan: gen %d closed, retry\n", _pid, p);
                 p = 0; st = pin_plan
              fi }
  /* ---- finish_run: unpin after the last endpoint ---- */
  :: atomic { st == finish_run -> finish_run_body() }
#endif

  /* ---- read_stamp: load the stamp word, decide ---- */
  :: atomic { st == read_stamp ->
              rg = stamp_gen[e]; rf = stamp_fence[e];
              if
              :: rg >= p -> next_endpoint()                  /* stale */
#ifndef BROKEN_FENCE
              :: rg < p && rf > myfence ->                   /* fenced */
                 printf("E%d read_stamp: endpoint %d fence %d > mine %d: fenced\n", _pid, e, rf, myfence);
                 lose_lease()
              :: rg < p && rf <= myfence -> st = commit
#else
              :: rg < p -> st = commit                       /* BROKEN: fences ignored */
#endif
              fi }

#ifdef SPLIT_COMMIT
  /* ---- commit, memory store: first the fence-floor load (M1) ---- */
  :: atomic { st == commit ->
              if
#ifndef BROKEN_FENCE
              :: myfence < fence_floor ->
                 printf("E%d commit: endpoint %d refused, fence %d < floor %d\n", _pid, e, myfence, fence_floor);
                 lose_lease()
#endif
              :: else ->
                 printf("E%d commit: endpoint %d fence %d >= floor %d, on to the CAS\n", _pid, e, myfence, fence_floor);
                 st = commit_cas
              fi }
#define CAS_STEP commit_cas
#else
#define CAS_STEP commit
#endif

  /* ---- commit: the store's conditional commit, one CAS of the stamp word ---- */
  :: atomic { st == CAS_STEP ->
              if
#if !defined(SPLIT_COMMIT) && !defined(BROKEN_FENCE)
              :: myfence < fence_floor ->                    /* refused by the floor */
                 printf("E%d commit: endpoint %d refused, fence %d < floor %d\n", _pid, e, myfence, fence_floor);
                 lose_lease()
              :: else ->
              if
#endif
              :: stamp_gen[e] >= p -> next_endpoint()        /* stale */
#ifndef BROKEN_FENCE
              :: stamp_gen[e] < p && stamp_fence[e] > myfence -> /* fenced */
                 printf("E%d commit: endpoint %d fenced by %d\n", _pid, e, stamp_fence[e]);
                 lose_lease()
              :: stamp_gen[e] < p && stamp_fence[e] <= myfence &&
                 !(stamp_gen[e] == rg && stamp_fence[e] == rf) -> /* conflict */
#else
              :: stamp_gen[e] < p && !(stamp_gen[e] == rg && stamp_fence[e] == rf) ->
#endif
                 printf("E%d commit: endpoint %d conflict\n", _pid, e);
                 if
                 :: conflicts < CONFLICT_RETRIES_MAX -> conflicts++; rg = 0; rf = 0; st = read_stamp
                 :: else -> run_complete = false; next_endpoint()
                 fi
#ifndef BROKEN_COMMIT
              :: stamp_gen[e] == rg && stamp_fence[e] == rf -> write_stamp()   /* CAS succeeds */
#else
              :: stamp_gen[e] == rg && stamp_fence[e] == rf -> st = commit_store /* checked only */
#endif
              fi
#if !defined(SPLIT_COMMIT) && !defined(BROKEN_FENCE)
              fi
#endif
            }

#ifdef BROKEN_COMMIT
  /* ---- BROKEN_COMMIT: the store that follows the check, not atomic with it ---- */
  :: atomic { st == commit_store -> write_stamp() }
#endif

  /* ---- collect: authority check(), then registry collect() under its mutex ---- */
  :: atomic { st == collect && c == 0 && holder == _pid && registry_mutex == NOBODY ->
              registry_mutex = _pid; c = 1 }

  /* ---- close: CAS of the candidate's pin word 0 -> closed ---- */
  :: atomic { st == collect && c != 0 ->
              if
              :: c + K > published ->                        /* no candidate left: idle */
                 registry_mutex = NOBODY; c = 0; st = pin_plan
              :: c + K <= published && removed[c] -> c++     /* collected before */
#ifdef BROKEN_PIN
              :: c + K <= published && !removed[c] ->        /* BROKEN: pin count ignored */
                 printf("E%d close: gen %d (pins ignored)\n", _pid, c);
                 s = 0; st = scan
#else
              :: c + K <= published && !removed[c] && pins[c] == 0 ->
                 pins[c] = CLOSED;
                 printf("E%d close: gen %d\n", _pid, c);
#ifdef BROKEN_COLLECT
                 st = unlink                                 /* BROKEN: no live-set scan */
#else
                 s = 0; st = scan
#endif
              :: c + K <= published && !removed[c] && pins[c] != 0 -> c++ /* pinned: kept */
#endif
              fi }

  /* ---- scan: live_generations(), one stamp load per endpoint ---- */
  :: atomic { st == scan ->
              if
              :: stamp_gen[s] == c ->                        /* live: reopen, keep */
                 printf("E%d scan: endpoint %d serves gen %d: kept\n", _pid, s, c);
                 s = 0;
#ifdef FINE_GRAIN
                 st = reopen
#else
#ifndef BROKEN_PIN
                 pins[c] = 0;
#endif
                 c++; st = collect
#endif
              :: else ->
                 s++;
                 if
                 :: s == N -> s = 0; st = unlink
                 :: else -> skip
                 fi
              fi }

#ifdef FINE_GRAIN
  /* ---- reopen: clear `closed`, the plan stays ---- */
  :: atomic { st == reopen ->
#ifndef BROKEN_PIN
              pins[c] = 0;
#endif
              c++; st = collect }
#endif

  /* ---- unlink: the plan and its records are gone; S3 checked at this instant ---- */
  :: atomic { st == unlink ->
              printf("E%d unlink: gen %d\n", _pid, c);
#ifndef NO_S3_AT_UNLINK
              i = 0;
              do
              :: i < N -> assert(S3_not_served_at_unlink && stamp_gen[i] != c); i++
              :: else -> break
              od;
              i = 0;
              do
              :: i < E -> assert(S3_not_in_flight_at_unlink && holding[i] != c); i++
              :: else -> break
              od;
              i = 0;
              assert(S3_not_retained_at_unlink && c + K <= published);
#endif
              removed[c] = true; c++; st = collect }
  od
}

/* planner: registry publish() of generations 1..G, in order, under the registry mutex */
active proctype planner()
{
  do
  :: atomic { published < G && registry_mutex == NOBODY ->
              published++; printf("planner publish gen %d\n", published) }
  :: atomic { published == G -> break }
  od
}
