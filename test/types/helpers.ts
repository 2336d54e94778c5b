// Type-level assertions for the type tests: `Expect<Equal<A, B>>` compiles only when A is B.
export type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
export type Expect<T extends true> = T;
/** true when T is `any` (which the public types never give). */
export type IsAny<T> = 0 extends 1 & T ? true : false;
