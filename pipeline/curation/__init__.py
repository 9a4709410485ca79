"""Multi-agent curation of preference pairs (``zhufu curate``).

Per candidate greeting: a retrieval agent finds good exemplars for the query
(:mod:`.retrieval`), an advocate and a critic debate its strengths and weaknesses, a judge
gives a verdict and a score, and a reflect agent audits the verdict (:mod:`.agents`,
:mod:`.runner`). Per query the best and the worst candidate form a preference pair
(:mod:`.pairs`). Every LLM answer is journaled (:mod:`.journal`) so a killed run resumes
without repeating a call. :func:`~zhufu.pipeline.curation.stage.curate` is the stage.
"""
