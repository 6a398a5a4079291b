"""A frame's picture is its own score kind (plan.matching.picture_scores): on-screen text that
has nothing to do with the question, fused into the frame's vector by the offline embedder,
does not bury a picture that answers it."""

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from vidsift.core.config import BudgetConfig, SelectionConfig
from vidsift.pipeline.plan.evidence import on_screen_texts, plan_evidence, text_relevance
from vidsift.pipeline.plan.matching import picture_scores

from tests.pipeline.plan.test_peaks import covers

QUESTION = "Is there a cup of coffee on the table?"
CREDITS = "LIGHTING AND COMPOSITING BY THE NIGHT SHIFT TEAM"


@pytest.fixture(scope="module")
def photo_with_credits(offline_embedder):
    """scikit-image's coffee photo at 448 x 252 with a line of credits under it, embedded by the
    offline embedder (labels, OCR): its FrameEmbeddings, and its label vector as the embedder
    computed it before fusing the text in."""
    from skimage import data

    frame = Image.new("RGB", (448, 252), (10, 10, 10))
    frame.paste(Image.fromarray(data.coffee()).resize((300, 200)), (74, 6))
    draw = ImageDraw.Draw(frame)
    font = ImageFont.load_default(size=16)
    width = draw.textbbox((0, 0), CREDITS, font=font)[2]
    draw.text(((448 - width) // 2, 222), CREDITS, font=font, fill=(255, 255, 255))
    image = np.asarray(frame)
    embedded = offline_embedder.encode_frames([image])
    probs = offline_embedder._features_and_probs([image])[1]
    return embedded, offline_embedder._label_vector_rows(probs)[0][0]


def test_the_picture_score_is_its_labels_score(offline_embedder, photo_with_credits):
    embedded, labels = photo_with_credits
    assert " | text: " in embedded.descriptions[0]  # OCR read the credits
    texts = on_screen_texts(embedded.descriptions, offline_embedder.embed_text)
    query = offline_embedder.embed_text([QUESTION])
    picture = picture_scores(embedded.text, texts.read_vectors[texts.frame_read], query[0])
    assert picture[0] == pytest.approx(float(labels @ query[0]), abs=1e-4)
    # the credits pulled the fused vector well under the picture's own score
    assert float(embedded.text[0] @ query[0]) < picture[0] - 0.08
    # several phrasings: the best
    two = np.vstack([offline_embedder.embed_text(["a red bicycle"]), query])
    assert picture_scores(embedded.text, texts.read_vectors[texts.frame_read], two)[0] == \
        pytest.approx(picture[0], abs=1e-5)


def test_unrelated_text_does_not_bury_a_picture_that_answers(offline_embedder,
                                                             photo_with_credits):
    """60 frames at 1 fps without text, scoring between the coffee frame's fused score and its
    picture's; the coffee frame (with credits) at 30 s. Before, it scored its fused score, under
    every other frame's, and the plan of 4 frames had no reason to show it."""
    embedded, _ = photo_with_credits
    query = offline_embedder.embed_text([QUESTION])[0].astype(np.float64)
    alone = on_screen_texts(embedded.descriptions, offline_embedder.embed_text)
    fused_score = float(embedded.text[0] @ query)
    picture = picture_scores(embedded.text, alone.read_vectors[alone.frame_read], query)[0]
    rng = np.random.default_rng(3)
    n = 60
    levels = rng.uniform(fused_score + 0.02, picture - 0.03, n)
    noise = rng.normal(size=(n, len(query)))
    noise -= np.outer(noise @ query, query)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    vectors = (levels[:, None] * query + np.sqrt(1 - levels[:, None] ** 2) * noise)
    vectors[30] = embedded.text[0]
    vectors = vectors.astype(np.float32)
    descriptions = ["labels: espresso"] * n
    descriptions[30] = embedded.descriptions[0]
    texts = on_screen_texts(descriptions, offline_embedder.embed_text)
    times = np.arange(n, dtype=np.float64)
    visual = np.eye(n, 64, dtype=np.float32)
    fused = vectors @ query
    scored = text_relevance(fused, texts, query, reference=fused, fused_vectors=vectors)
    assert scored[30] == pytest.approx(picture, abs=1e-4) and scored.argmax() == 30
    budget = BudgetConfig(tokens=4 * 256)
    plan = plan_evidence(times, visual, vectors, query, 0.0, float(n), SelectionConfig(), budget,
                         (720, 1280), texts=texts, question=QUESTION)
    assert covers(plan, 30)
    assert plan.total_tokens <= budget.tokens
